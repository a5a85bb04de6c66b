"""The report SQL, built from a validated `ReportQuery`. The text is assembled from constant
fragments only; every value travels as a `$n` parameter (hence the `noqa: S608`s).

A grouped report is one statement: the rollup's whole days and the ledger's partial-day edges
are aggregated separately, combined with UNION ALL and summed again per group. Groups whose
request count nets to zero are dropped (a rollup row can be left at zero when an abandoned
request is later settled under another model)."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.reports.query import GroupBy, Plan, ReportQuery, Window, split_window

COUNTERS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)

# Group columns as each source spells them, and what a report row calls them.
_GROUP_COLUMNS: dict[GroupBy, tuple[str, ...]] = {
    GroupBy.tenant: ("tenant_id",),
    GroupBy.user: ("tenant_id", "end_user_id"),
    GroupBy.model: ("model",),
    GroupBy.key: ("api_key_id",),
    GroupBy.day: ("day",),
    GroupBy.endpoint: ("endpoint",),
}
_LEDGER_DAY = "(l.started_at AT TIME ZONE 'UTC')::date"

# Largest first, except days, which read best in order.
_ORDER: dict[GroupBy, tuple[str, ...]] = {
    GroupBy.tenant: ("cost_usd DESC", "tenant_id"),
    GroupBy.user: ("cost_usd DESC", "external_id NULLS LAST", "tenant_id"),
    GroupBy.model: ("cost_usd DESC", "model"),
    GroupBy.key: ("cost_usd DESC", "api_key_id"),
    GroupBy.day: ("day",),
    GroupBy.endpoint: ("cost_usd DESC", "endpoint"),
}


@dataclass
class Statement:
    """SQL text with `$n` placeholders and their values, in order."""

    text: str = ""
    args: list[object] = field(default_factory=list)

    def arg(self, value: object, cast: str) -> str:
        self.args.append(value)
        return f"CAST(${len(self.args)} AS {cast})"


def filters(query: ReportQuery, st: Statement, alias: str) -> list[str]:
    f, a = query.filters, alias
    conditions: list[str] = []
    tenant = st.arg(f.tenant_id, "uuid") if f.tenant_id is not None else None
    if tenant is not None:
        conditions.append(f"{a}.tenant_id = {tenant}")
    if f.key_id is not None:
        conditions.append(f"{a}.api_key_id = {st.arg(f.key_id, 'uuid')}")
    if f.model is not None:
        conditions.append(f"{a}.model = {st.arg(f.model, 'text')}")
    if f.endpoint is not None:
        conditions.append(f"{a}.endpoint = {st.arg(f.endpoint, 'text')}")
    if f.user is not None:
        scope = f" AND eu.tenant_id = {tenant}" if tenant is not None else ""
        conditions.append(
            f"{a}.end_user_id IN (SELECT eu.id FROM end_users eu "  # noqa: S608
            f"WHERE eu.external_id = {st.arg(f.user, 'text')}{scope})"
        )
    return conditions


def _rollup_table(query: ReportQuery) -> str:
    """`usage_daily_users` (ten times smaller) unless the report needs the model, the key or
    the endpoint."""
    f = query.filters
    needs_scope = f.model or f.key_id or f.endpoint
    if query.group_by in (GroupBy.model, GroupBy.key, GroupBy.endpoint) or needs_scope:
        return "usage_daily"
    return "usage_daily_users"


def _rollup_part(query: ReportQuery, plan: Plan, st: Statement, groups: tuple[str, ...]) -> str:
    assert plan.days is not None
    where = filters(query, st, "d")
    if plan.days.first is not None:
        where.append(f"d.day >= {st.arg(plan.days.first, 'date')}")
    if plan.days.stop is not None:
        where.append(f"d.day < {st.arg(plan.days.stop, 'date')}")
    select = [f"d.{g}" for g in groups] + [
        "sum(d.requests) AS requests",
        "sum(d.input_tokens) AS input_tokens",
        "sum(d.output_tokens) AS output_tokens",
        "sum(d.cache_write_5m_tokens + d.cache_write_1h_tokens) AS cache_creation_input_tokens",
        "sum(d.cache_read_tokens) AS cache_read_input_tokens",
        "sum(d.cost_usd) AS cost_usd",
    ]
    return _select(select, f"{_rollup_table(query)} d", where, [f"d.{g}" for g in groups])


_LEDGER_SUMS = (
    "count(*) AS requests",
    "sum(l.input_tokens) AS input_tokens",
    "sum(l.output_tokens) AS output_tokens",
    "sum(l.cache_write_5m_tokens + l.cache_write_1h_tokens) AS cache_creation_input_tokens",
    "sum(l.cache_read_tokens) AS cache_read_input_tokens",
    "sum(l.cost_usd) AS cost_usd",
)


def _ledger_part(query: ReportQuery, edge: Window, st: Statement, groups: tuple[str, ...]) -> str:
    where = [*filters(query, st, "l"), "l.status <> 'in_flight'", *time_range(edge, st, "l")]
    keys = [_LEDGER_DAY if g == "day" else f"l.{g}" for g in groups]
    select = [f"{key} AS {g}" for key, g in zip(keys, groups, strict=True)] + list(_LEDGER_SUMS)
    return _select(select, "usage_ledger l", where, keys)


def time_range(window: Window, st: Statement, alias: str) -> list[str]:
    where = []
    if window.start is not None:
        where.append(f"{alias}.started_at >= {st.arg(window.start, 'timestamptz')}")
    if window.end is not None:
        where.append(f"{alias}.started_at < {st.arg(window.end, 'timestamptz')}")
    return where


def _select(select: list[str], source: str, where: list[str], group: list[str]) -> str:
    sql = f"SELECT {', '.join(select)} FROM {source}"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group:
        sql += " GROUP BY " + ", ".join(group)
    return sql


def aggregate(query: ReportQuery) -> Statement:
    """One row per group (or one total row without `group_by`), in no order: the group
    columns, then `requests`, the token counters and `cost_usd`; `external_id` too when grouped
    by user."""
    st = Statement()
    groups = _GROUP_COLUMNS[query.group_by] if query.group_by is not None else ()
    plan = split_window(query.window)
    parts = [_ledger_part(query, edge, st, groups) for edge in plan.edges]
    if plan.days is not None:
        parts.insert(0, _rollup_part(query, plan, st, groups))
    sums = [f"sum(p.{c})::bigint AS {c}" for c in COUNTERS] + ["sum(p.cost_usd) AS cost_usd"]
    inner = " UNION ALL ".join(f"({part})" for part in parts)
    keys = [f"p.{g}" for g in groups]
    sql = f"SELECT {', '.join([*keys, *sums])} FROM ({inner}) p"  # noqa: S608
    if not groups:
        return Statement(sql, st.args)
    sql += f" GROUP BY {', '.join(keys)} HAVING sum(p.requests) > 0"
    if query.group_by is GroupBy.user:
        sql = (
            f"SELECT r.*, u.external_id FROM ({sql}) r "  # noqa: S608
            "LEFT JOIN end_users u ON u.id = r.end_user_id"
        )
    return Statement(sql, st.args)


def order_by(group_by: GroupBy, alias: str) -> str:
    """The order of report rows, over `aggregate`'s columns as `alias`."""
    return ", ".join(f"{alias}.{term}" for term in _ORDER[group_by])


_JSON_GROUP: dict[GroupBy, str] = {
    GroupBy.tenant: "'tenant', a.tenant_id",
    GroupBy.user: "'user', a.external_id, 'tenant', a.tenant_id",
    GroupBy.model: "'model', a.model",
    GroupBy.key: "'key', a.api_key_id",
    GroupBy.day: "'day', to_char(a.day, 'YYYY-MM-DD')",
    GroupBy.endpoint: "'endpoint', a.endpoint",
}


def _json_counters(prefix: str, total: bool) -> str:
    """`'requests', <value>, …, 'cost_usd', <decimal string>` (format_usd's form)."""
    pairs = [
        f"'{c}', COALESCE(sum({prefix}{c}), 0)::bigint" if total else f"'{c}', {prefix}{c}"
        for c in COUNTERS
    ]
    cost = f"COALESCE(sum({prefix}cost_usd), 0)" if total else f"{prefix}cost_usd"
    return ", ".join([*pairs, f"'cost_usd', trim_scale({cost})::text"])


def report_json(query: ReportQuery) -> Statement:
    """The whole JSON body, `{"rows": [...], "total": {...}}`, rendered by Postgres as one text
    value: however many rows, the app handles a single string (no per-row objects to build,
    or for the garbage collector to walk)."""
    inner = aggregate(query)
    rows = "'[]'::json"
    if query.group_by is not None:
        row = f"json_build_object({_JSON_GROUP[query.group_by]}, {_json_counters('a.', False)})"
        order = order_by(query.group_by, "a")
        rows = f"(SELECT json_agg({row} ORDER BY {order}) FROM a)"  # noqa: S608
    total = f"(SELECT json_build_object({_json_counters('a.', True)}) FROM a)"  # noqa: S608
    sql = (
        f"WITH a AS MATERIALIZED ({inner.text}) "
        f"SELECT json_build_object('rows', COALESCE({rows}, '[]'::json), 'total', {total})::text"
    )
    return Statement(sql, inner.args)
