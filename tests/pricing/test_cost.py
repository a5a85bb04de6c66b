"""Prices come from prices.json; every expected value below is computed by hand."""

from __future__ import annotations

import json
import random
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from api.pricing import (
    ModelPrice,
    PriceTable,
    Rates,
    Usage,
    compute_cost,
    format_usd,
    load_price_table,
    worst_case_cost,
)
from api.pricing.table import price_table_from_json

TODAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table(TODAY)


def price(table: PriceTable, model_id: str) -> ModelPrice:
    found = table.lookup(model_id)
    assert found is not None, model_id
    return found


def test_bundled_table_loads_with_its_version(table: PriceTable) -> None:
    assert table.version == "2026-11-01"
    assert table.effective_from == date(2026, 11, 1)
    assert len(table.models) == 9


def test_plain_sonnet_4_6_input_and_output(table: PriceTable) -> None:
    # 1234 * 3 / 1e6 + 567 * 15 / 1e6 = 0.003702 + 0.008505
    cost = compute_cost(
        price(table, "claude-sonnet-4-6"), Usage(input_tokens=1234, output_tokens=567)
    )
    assert cost == Decimal("0.012207")
    assert format_usd(cost) == "0.012207"


def test_sonnet_cache_read_and_both_cache_writes(table: PriceTable) -> None:
    usage = Usage(
        input_tokens=100,  # 100 * 3 = 300
        output_tokens=200,  # 200 * 15 = 3000
        cache_write_5m_tokens=1000,  # 1000 * 3.75 = 3750
        cache_write_1h_tokens=2000,  # 2000 * 6 = 12000
        cache_read_tokens=10000,  # 10000 * 0.30 = 3000
    )  # 22050 micro-dollars
    assert compute_cost(price(table, "claude-sonnet-4-5"), usage) == Decimal("0.02205")
    assert usage.cache_creation_input_tokens == 3000
    assert usage.total_input_tokens == 13100


def test_haiku_4_5(table: PriceTable) -> None:
    usage = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=3000)
    # 1000 * 1 + 500 * 5 + 3000 * 0.10 = 1000 + 2500 + 300 = 3800 micro-dollars
    assert compute_cost(price(table, "claude-haiku-4-5"), usage) == Decimal("0.0038")


def test_opus_4_6(table: PriceTable) -> None:
    usage = Usage(input_tokens=2000, output_tokens=1000, cache_write_5m_tokens=400)
    # 2000 * 5 + 1000 * 25 + 400 * 6.25 = 10000 + 25000 + 2500 = 37500 micro-dollars
    assert compute_cost(price(table, "claude-opus-4-6"), usage) == Decimal("0.0375")


def test_opus_4_1_and_haiku_3_5_rates(table: PriceTable) -> None:
    usage = Usage(input_tokens=1, output_tokens=1, cache_read_tokens=1)
    # 15 + 75 + 1.50 = 91.5 micro-dollars
    assert compute_cost(price(table, "claude-opus-4-1"), usage) == Decimal("0.0000915")
    # 0.80 + 4 + 0.08 = 4.88 micro-dollars
    assert compute_cost(price(table, "claude-3-5-haiku-latest"), usage) == Decimal("0.00000488")


def test_long_context_premium_applies_to_whole_sonnet_4_5_request(table: PriceTable) -> None:
    sonnet = price(table, "claude-sonnet-4-5-20250929")
    # 250000 * 6 + 1000 * 22.50 = 1500000 + 22500 micro-dollars
    assert compute_cost(sonnet, Usage(input_tokens=250_000, output_tokens=1000)) == Decimal(
        "1.5225"
    )
    # exactly 200000: no premium. 200000 * 3 + 1000 * 15 = 600000 + 15000
    assert compute_cost(sonnet, Usage(input_tokens=200_000, output_tokens=1000)) == Decimal("0.615")


def test_long_context_threshold_counts_cache_tokens(table: PriceTable) -> None:
    sonnet = price(table, "claude-sonnet-4-0")
    usage = Usage(input_tokens=1, cache_write_1h_tokens=100_000, cache_read_tokens=100_000)
    # 200001 total > 200000: 1 * 6 + 100000 * 12 + 100000 * 0.60 = 6 + 1200000 + 60000
    assert compute_cost(sonnet, usage) == Decimal("1.260006")


def test_sonnet_4_6_has_no_long_context_premium(table: PriceTable) -> None:
    # 300000 * 3 = 900000 micro-dollars
    sonnet = price(table, "claude-sonnet-4-6")
    assert compute_cost(sonnet, Usage(input_tokens=300_000)) == Decimal("0.9")


def test_web_search_three_requests_cost_three_cents(table: PriceTable) -> None:
    usage = Usage(web_search_requests=3)
    assert compute_cost(price(table, "claude-sonnet-4-6"), usage) == Decimal("0.03")


def test_data_residency_multiplier_applies_to_tokens_when_geo_is_us(table: PriceTable) -> None:
    opus = price(table, "claude-opus-4-6")
    usage = Usage(input_tokens=1000, output_tokens=1000, web_search_requests=1, inference_geo="us")
    # (1000 * 5 + 1000 * 25) * 1.1 = 33000 micro-dollars, + 1 search = 0.01
    assert compute_cost(opus, usage) == Decimal("0.043")
    usage.inference_geo = "global"
    assert compute_cost(opus, usage) == Decimal("0.04")
    # a model without a multiplier ignores the geo
    haiku = price(table, "claude-haiku-4-5")
    assert compute_cost(haiku, Usage(input_tokens=1000, inference_geo="us")) == Decimal("0.001")


def test_cost_is_rounded_half_up_at_ten_decimal_places(table: PriceTable) -> None:
    # 1 cache-read token on Haiku 3.5: 0.08 / 1e6 = 0.00000008 exactly
    haiku = price(table, "claude-3-5-haiku-20241022")
    assert compute_cost(haiku, Usage(cache_read_tokens=1)) == Decimal("0.00000008")
    # 1 token at 0.00005 per million = 5e-11 -> rounds half up to 1e-10
    tiny = ModelPrice("x", Rates(*(Decimal("0.00005"),) * 5), Decimal(0))
    assert compute_cost(tiny, Usage(input_tokens=1)) == Decimal("0.0000000001")
    # 4e-11 rounds down
    tiny = ModelPrice("x", Rates(*(Decimal("0.00004"),) * 5), Decimal(0))
    assert compute_cost(tiny, Usage(input_tokens=1)) == Decimal("0")


def test_negative_usage_is_refused(table: PriceTable) -> None:
    with pytest.raises(ValueError, match="negative"):
        compute_cost(price(table, "claude-opus-4-6"), Usage(output_tokens=-1))


@pytest.mark.parametrize(
    ("dated", "alias"),
    [
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4-0"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
    ],
)
def test_dated_id_and_alias_resolve_to_the_same_price(
    table: PriceTable, dated: str, alias: str
) -> None:
    assert table.lookup(dated) is table.lookup(alias)
    assert price(table, alias).canonical_id == dated


def test_unknown_and_prefix_ids_are_not_matched(table: PriceTable) -> None:
    assert table.lookup("claude-opus-4-8") is None
    assert table.lookup("claude-sonnet-4-6-20260217") is None  # no prefix matching
    assert table.lookup("claude-sonnet-4") is None
    assert table.lookup("CLAUDE-SONNET-4-6") is None


def test_fallback_prices_unknown_models_under_their_own_id() -> None:
    fallback = Rates(Decimal(2), Decimal(10), Decimal("2.5"), Decimal(4), Decimal("0.2"))
    table = load_price_table(TODAY, fallback=fallback)
    unknown = price(table, "claude-opus-4-8")
    assert unknown.canonical_id == "claude-opus-4-8"
    assert unknown.base == fallback
    # 1000 * 2 + 100 * 10 = 3000 micro-dollars, + 1 search = 0.01
    usage = Usage(input_tokens=1000, output_tokens=100, web_search_requests=1)
    assert compute_cost(unknown, usage) == Decimal("0.013")
    # known models keep their own price
    assert price(table, "claude-haiku-4-5").base.input == Decimal(1)


def _versions_file(tmp_path: Path, versions: list[dict[str, object]]) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(versions), encoding="utf-8")
    return path


def _model(model_id: str, input_rate: str) -> dict[str, object]:
    return {
        "id": model_id,
        "ids": [model_id],
        "input": input_rate,
        "output": "1",
        "cache_write_5m": "1",
        "cache_write_1h": "1",
        "cache_read": "1",
        "web_search_per_1000": "10.00",
    }


def test_newest_version_effective_at_the_date_is_chosen(tmp_path: Path) -> None:
    path = _versions_file(
        tmp_path,
        [
            {"version": "v2", "effective_from": "2026-06-01", "models": [_model("m", "2")]},
            {"version": "v1", "effective_from": "2026-01-01", "models": [_model("m", "1")]},
        ],
    )
    assert load_price_table(date(2026, 5, 31), path=path).version == "v1"
    assert load_price_table(date(2026, 6, 1), path=path).version == "v2"
    assert price(load_price_table(date(2027, 1, 1), path=path), "m").base.input == Decimal(2)
    with pytest.raises(ValueError, match="no price version is effective on 2025-12-31"):
        load_price_table(date(2025, 12, 31), path=path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input", 3, "model 'm': field 'input': expected a non-negative decimal string"),
        ("output", "1e3", "model 'm': field 'output'"),
        ("cache_read", "-1", "model 'm': field 'cache_read'"),
        ("ids", ["other"], "model 'm': field 'ids': must contain the canonical id"),
        ("colour", "red", "model 'm': unknown field(s) 'colour'"),
        ("long_context", {"input": "6"}, "model 'm' long_context: missing field(s)"),
    ],
)
def test_bad_model_entry_raises_a_clear_error(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    model = _model("m", "1") | {field: value}
    path = _versions_file(
        tmp_path, [{"version": "v1", "effective_from": "2026-01-01", "models": [model]}]
    )
    with pytest.raises(ValueError, match=re.escape("version 'v1' " + message)):
        load_price_table(TODAY, path=path)


def test_missing_field_and_duplicate_id_are_refused() -> None:
    model = _model("m", "1")
    del model["cache_write_1h"]
    text = json.dumps([{"version": "v1", "effective_from": "2026-01-01", "models": [model]}])
    with pytest.raises(ValueError, match=re.escape("model 'm': missing field(s) 'cache_write_1h'")):
        price_table_from_json(text, TODAY)
    twin = _model("n", "1") | {"ids": ["n", "m"]}
    models = [_model("m", "1"), twin]
    text = json.dumps([{"version": "v1", "effective_from": "2026-01-01", "models": models}])
    with pytest.raises(ValueError, match="model 'n': field 'ids': 'm' is already used by 'm'"):
        price_table_from_json(text, TODAY)


def test_float_literal_in_the_file_is_refused() -> None:
    text = (
        '[{"version": "v1", "effective_from": "2026-01-01", "models": ['
        + json.dumps(_model("m", "1")).replace('"input": "1"', '"input": 3.75')
        + "]}]"
    )
    with pytest.raises(ValueError, match=r"field 'input'.*got Decimal\('3.75'\)"):
        price_table_from_json(text, TODAY)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("0.0042150000", "0.004215"),
        ("0", "0"),
        ("0E-10", "0"),
        ("-0.00", "0"),
        ("12.5000000000", "12.5"),
        ("100", "100"),
        ("1E+3", "1000"),
        ("1E-10", "0.0000000001"),
        ("-1.50", "-1.5"),
    ],
)
def test_format_usd_is_plain_decimal_without_trailing_zeros(amount: str, text: str) -> None:
    assert format_usd(Decimal(amount)) == text


def test_format_usd_refuses_non_finite() -> None:
    with pytest.raises(ValueError):
        format_usd(Decimal("NaN"))


def test_worst_case_hand_computed(table: PriceTable) -> None:
    sonnet = price(table, "claude-sonnet-4-5")
    # under the threshold: 100000 * 3 + 1000 * 15 = 315000 micro-dollars
    assert worst_case_cost(sonnet, 100_000, 1000) == Decimal("0.315")
    # above: 300000 * 6 + 1000 * 22.50 = 1822500
    assert worst_case_cost(sonnet, 300_000, 1000) == Decimal("1.8225")
    # cache writes may cost 2x input (1h): 100000 * 6 + 1000 * 15 = 615000
    assert worst_case_cost(sonnet, 100_000, 1000, cache_writes=True) == Decimal("0.615")
    # residency multiplier always reserved: (1000 * 5 + 1000 * 25) * 1.1 = 33000; + 2 searches
    opus = price(table, "claude-opus-4-6")
    assert worst_case_cost(opus, 1000, 1000, web_search_requests=2) == Decimal("0.053")


def test_worst_case_is_never_below_the_actual_cost(table: PriceTable) -> None:
    rng = random.Random(20261120)
    for _ in range(3000):
        model = rng.choice(table.models)
        bound = rng.choice([rng.randint(0, 1000), rng.randint(0, 400_000), 200_000, 200_001])
        max_tokens = rng.randint(0, 64_000)
        usage = Usage(
            input_tokens=rng.randint(0, bound),
            output_tokens=rng.randint(0, max_tokens),
            inference_geo=rng.choice([None, "us", "global"]),
        )
        assert worst_case_cost(model, bound, max_tokens) >= compute_cost(model, usage)
        # with cache writes allowed, any split of the bound is covered
        cache_1h = rng.randint(0, usage.input_tokens)
        cache_5m = rng.randint(0, usage.input_tokens - cache_1h)
        cached = Usage(
            input_tokens=usage.input_tokens - cache_1h - cache_5m,
            output_tokens=usage.output_tokens,
            cache_write_5m_tokens=cache_5m,
            cache_write_1h_tokens=cache_1h,
            inference_geo=usage.inference_geo,
        )
        assert worst_case_cost(model, bound, max_tokens, cache_writes=True) >= compute_cost(
            model, cached
        )
