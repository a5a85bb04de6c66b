"""Report parameters: a bad one is a 400 `invalid_request_error` that names it, and a window is
split into whole days (rollup) and partial-day edges (ledger) exactly."""

from __future__ import annotations

from datetime import date, datetime

import httpx
import pytest
from starlette.datastructures import QueryParams

from api.errors import InvalidRequest
from api.reports.params import TENANT_PARAMS, parse_report
from api.reports.query import DayRange, Window, split_window
from tests.admin.helpers import assert_error
from tests.reports.helpers import utc

BAD = [
    ("group_by=week", "group_by"),
    ("group_by=", "group_by"),
    ("format=xlsx", "format"),
    ("from=yesterday", "from"),
    ("to=2026-13-01", "to"),
    ("from=2026-10-02&to=2026-10-01", "to"),
    ("from=2026-10-01T10:00:00Z&to=2026-10-01T10:00:00Z", "to"),
    ("tenant_id=acme", "tenant_id"),
    ("key_id=12", "key_id"),
    ("user=", "user"),
    ("model=" + "m" * 300, "model"),
    ("tenant=6f1c0a52-93b5-4a5e-9d59-0e0f3d0f6a11", "tenant"),  # a typo: never "all tenants"
    ("group_by=day&group_by=user", "group_by"),
]


@pytest.mark.parametrize(("query", "name"), BAD, ids=[q for q, _ in BAD])
async def test_a_bad_parameter_is_a_400_naming_it(
    admin: httpx.AsyncClient, query: str, name: str
) -> None:
    response = await admin.get(f"/admin/usage?{query}")
    message = assert_error(response, 400, "invalid_request_error")
    assert message.startswith(f"{name}: "), message


def test_good_parameters_parse() -> None:
    query = parse_report(
        QueryParams(
            "tenant_id=6f1c0a52-93b5-4a5e-9d59-0e0f3d0f6a11&user=a%20b&model=m&from=2026-10-01"
            "&to=2026-10-02T03:04:05.5%2B02:00&group_by=key&format=csv"
        )
    )
    assert query.filters.user == "a b" and query.filters.model == "m"
    assert query.window == Window(utc("2026-10-01T00:00:00"), utc("2026-10-02T01:04:05.5"))
    assert query.group_by == "key" and query.format == "csv"


def test_a_tenant_may_not_name_a_tenant_but_may_send_other_parameters() -> None:
    with pytest.raises(InvalidRequest, match=r"^tenant_id: "):
        parse_report(QueryParams("tenant_id=x&group_by=day"), TENANT_PARAMS, strict=False)
    query = parse_report(QueryParams("group_by=day&_=12345"), TENANT_PARAMS, strict=False)
    assert query.group_by == "day"


def _at(text: str) -> datetime:
    """ "10-01 09:30" (October 2026, UTC); "10-01 00:00:00.000001" for sub-seconds."""
    day, clock = text.split(" ")
    return utc(f"2026-{day}T{clock}")


def _day(text: str) -> date:
    return _at(text + " 00:00").date()


SPLITS: list[tuple[str | None, str | None, DayRange | None, list[tuple[str, str]]]] = [
    (None, None, DayRange(None, None), []),
    ("10-01 00:00", "11-01 00:00", DayRange(_day("10-01"), _day("11-01")), []),
    (
        "10-01 09:30",
        "10-31 18:00",
        DayRange(_day("10-02"), _day("10-31")),
        [("10-01 09:30", "10-02 00:00"), ("10-31 00:00", "10-31 18:00")],
    ),
    ("10-01 09:30", "10-01 18:00", None, [("10-01 09:30", "10-01 18:00")]),
    ("10-01 09:30", "10-02 00:00", None, [("10-01 09:30", "10-02 00:00")]),
    ("10-01 09:30", "10-02 01:00", None, [("10-01 09:30", "10-02 01:00")]),
    (
        "10-01 09:30",
        "10-03 01:00",
        DayRange(_day("10-02"), _day("10-03")),
        [("10-01 09:30", "10-02 00:00"), ("10-03 00:00", "10-03 01:00")],
    ),
    (None, "10-03 01:00", DayRange(None, _day("10-03")), [("10-03 00:00", "10-03 01:00")]),
    (
        "10-01 00:00:00.000001",
        None,
        DayRange(_day("10-02"), None),
        [("10-01 00:00:00.000001", "10-02 00:00")],
    ),
]


@pytest.mark.parametrize(("start", "end", "days", "edges"), SPLITS)
def test_windows_split_into_whole_days_and_edges(
    start: str | None, end: str | None, days: DayRange | None, edges: list[tuple[str, str]]
) -> None:
    plan = split_window(Window(_at(start) if start else None, _at(end) if end else None))
    assert plan.days == days
    assert plan.edges == tuple(Window(_at(a), _at(b)) for a, b in edges)
