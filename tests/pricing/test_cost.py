"""Exact costs from the shipped price book, every one computed by hand in the comment above
it (rates are USD per million tokens, so a sum of token x rate is in micro-dollars)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from api.pricing import ModelPrice, PriceBook, Usage, compute_cost, format_usd, worst_case_cost
from api.pricing.book import family_of, shipped_book

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return shipped_book()


def price(book: PriceBook, model_id: str, at: datetime = NOW) -> ModelPrice:
    found = book.lookup(model_id, at)
    assert found is not None, model_id
    return found


def test_claude_code_default_model_is_priced(book: PriceBook) -> None:
    opus = price(book, "claude-opus-4-8")
    # 1000 * 5 + 1000 * 25 = 30000 micro-dollars
    assert compute_cost(opus, Usage(input_tokens=1000, output_tokens=1000)) == Decimal("0.03")


def test_tier_crossing_reprices_the_whole_haiku_5_5_request(book: PriceBook) -> None:
    haiku = price(book, "claude-haiku-5-5")
    # prompt = 90000 + 3000 + 8000 = 101000 > 100000: every token at the tier, output too:
    # 90000 * 0.50 + 2000 * 2.50 + 3000 * 0.625 + 8000 * 0.05 = 45000 + 5000 + 1875 + 400
    above = Usage(90_000, 2000, cache_write_5m_tokens=3000, cache_read_tokens=8000)
    assert compute_cost(haiku, above) == Decimal("0.052275")
    # prompt exactly 100000 is not above: 89000 * 0.10 + 2000 * 0.50 + 3000 * 0.125 + 8000 * 0.01
    at_threshold = Usage(89_000, 2000, cache_write_5m_tokens=3000, cache_read_tokens=8000)
    assert compute_cost(haiku, at_threshold) == Decimal("0.010355")


def test_sonnet_4_5_above_200k_is_priced_at_the_long_context_rates(book: PriceBook) -> None:
    sonnet = price(book, "claude-sonnet-4-5")
    # 250000 * 6 + 1000 * 22.50 = 1522500
    assert compute_cost(sonnet, Usage(250_000, 1000)) == Decimal("1.5225")
    # 200000 is not above: 200000 * 3 + 1000 * 15 = 615000
    assert compute_cost(sonnet, Usage(200_000, 1000)) == Decimal("0.615")


def test_fast_mode_doubles_opus_5_5_cache_reads_included(book: PriceBook) -> None:
    opus = price(book, "claude-opus-5-5")
    usage = Usage(10_000, 2000, cache_read_tokens=5000, speed="fast")
    # (10000 * 4 + 2000 * 20 + 5000 * 0.20) * 2 = 81000 * 2 = 162000
    assert compute_cost(opus, usage) == Decimal("0.162")
    usage.speed = "standard"
    assert compute_cost(opus, usage) == Decimal("0.081")


def test_us_inference_geo_multiplies_tokens_and_stacks_with_fast(book: PriceBook) -> None:
    opus = price(book, "claude-opus-4-8")
    # (1000 * 5 + 1000 * 25) * 1.1 = 33000
    assert compute_cost(opus, Usage(1000, 1000, inference_geo="us")) == Decimal("0.033")
    assert compute_cost(opus, Usage(1000, 1000, inference_geo="global")) == Decimal("0.03")
    # fast x us: 30000 * 2 * 1.1 = 66000
    both = Usage(1000, 1000, inference_geo="us", speed="fast")
    assert compute_cost(opus, both) == Decimal("0.066")
    # Opus 4.5 predates inference_geo: no multiplier even if a geo were reported
    assert compute_cost(price(book, "claude-opus-4-5"), Usage(1000, 1000, inference_geo="us")) == (
        Decimal("0.03")
    )


def test_both_cache_writes_and_reads_where_reads_are_not_a_tenth_of_input(
    book: PriceBook,
) -> None:
    fable = price(book, "claude-fable-5-1")
    usage = Usage(
        1000, 500, cache_write_5m_tokens=2000, cache_write_1h_tokens=4000, cache_read_tokens=100_000
    )
    # 1000 * 10 + 500 * 50 + 2000 * 12.50 + 4000 * 20 + 100000 * 0.25 (0.025x input)
    # = 10000 + 25000 + 25000 + 80000 + 25000 = 165000
    assert compute_cost(fable, usage) == Decimal("0.165")
    opus = price(book, "claude-opus-5-5")
    # 1000 * 4 + 500 * 20 + 2000 * 5 + 4000 * 8 + 100000 * 0.20 (0.05x input) = 76000
    assert compute_cost(opus, usage) == Decimal("0.076")


def test_web_search_is_ten_dollars_per_thousand_and_not_multiplied(book: PriceBook) -> None:
    sonnet = price(book, "claude-sonnet-4-6")
    # 1000 * 3 + 100 * 15 = 4500 micro = 0.0045; + 3 * 10 / 1000 = 0.03
    assert compute_cost(sonnet, Usage(1000, 100, web_search_requests=3)) == Decimal("0.0345")
    # geo multiplies the tokens only: 0.0045 * 1.1 + 0.03
    us = Usage(1000, 100, web_search_requests=3, inference_geo="us")
    assert compute_cost(sonnet, us) == Decimal("0.03495")


def test_batch_discount_halves_tokens(book: PriceBook) -> None:
    haiku = price(book, "claude-haiku-4-5")
    # (1000 * 1 + 1000 * 5) * 0.5 = 3000
    assert compute_cost(haiku, Usage(1000, 1000), batch=True) == Decimal("0.003")


def test_a_version_applies_from_its_effective_time(book: PriceBook) -> None:
    before = price(book, "claude-sonnet-5-5", datetime(2026, 10, 6, 23, 59, tzinfo=UTC))
    after = price(book, "claude-sonnet-5-5", datetime(2026, 10, 7, tzinfo=UTC))
    # 1,000,000 cache reads: $0.20 before the cut, $0.10 after
    assert compute_cost(before, Usage(cache_read_tokens=1_000_000)) == Decimal("0.2")
    assert compute_cost(after, Usage(cache_read_tokens=1_000_000)) == Decimal("0.1")
    assert book.lookup("claude-sonnet-5-5", datetime(2026, 9, 1, tzinfo=UTC)) is None


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
def test_dated_id_and_alias_resolve_to_the_same_version(
    book: PriceBook, dated: str, alias: str
) -> None:
    assert book.lookup(dated, NOW) is book.lookup(alias, NOW)
    assert price(book, alias).model == dated


def test_unknown_and_prefix_ids_are_not_matched(book: PriceBook) -> None:
    assert book.lookup("claude-opus-9", NOW) is None
    assert book.lookup("claude-sonnet-4-6-20260217", NOW) is None  # no prefix matching
    assert book.lookup("CLAUDE-SONNET-4-6", NOW) is None


def test_family_and_newest_in_family(book: PriceBook) -> None:
    assert family_of("claude-opus-4-8") == ("opus", (4, 8))
    assert family_of("claude-3-5-haiku-20241022") == ("haiku", (3, 5))
    assert family_of("gpt-4") is None
    newest = book.newest_in_family("opus", NOW)
    assert newest is not None and newest.model == "claude-opus-5-5"


def test_cost_is_rounded_half_up_at_ten_decimal_places(book: PriceBook) -> None:
    haiku = price(book, "claude-haiku-5-5")
    # 1 cache read at 0.01 per million = 1e-8
    assert compute_cost(haiku, Usage(cache_read_tokens=1)) == Decimal("0.00000001")
    with pytest.raises(ValueError, match="negative"):
        compute_cost(haiku, Usage(output_tokens=-1))


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0.0042150000", "0.004215"), ("0E-10", "0"), ("-0.00", "0"), ("1E+3", "1000")],
)
def test_format_usd_is_plain_decimal_without_trailing_zeros(amount: str, text: str) -> None:
    assert format_usd(Decimal(amount)) == text


def test_worst_case_hand_computed(book: PriceBook) -> None:
    haiku = price(book, "claude-haiku-5-5")
    # bound above the tier: highest input 0.50, output 2.50, geo 1.1 always reserved:
    # (150000 * 0.50 + 1000 * 2.50) * 1.1 = 85250
    assert worst_case_cost(haiku, 150_000, 1000) == Decimal("0.08525")
    opus = price(book, "claude-opus-5-5")
    # fast asked: (1000 * 4 + 1000 * 20) * 1.1 * 2 = 52800; + 2 searches = 0.02
    assert worst_case_cost(opus, 1000, 1000, fast=True, web_search_requests=2) == (
        Decimal("0.0728")
    )


def test_worst_case_is_never_below_the_actual_cost(book: PriceBook) -> None:
    rng = random.Random(20261130)
    models = book.current(NOW)
    for _ in range(3000):
        model = rng.choice(models)
        bound = rng.choice([rng.randint(0, 1000), rng.randint(0, 400_000), 100_001, 200_001])
        max_tokens = rng.randint(0, 64_000)
        fast = rng.random() < 0.3
        cache_1h = rng.randint(0, bound // 3)
        cache_5m = rng.randint(0, bound // 3)
        usage = Usage(
            input_tokens=rng.randint(0, bound - cache_1h - cache_5m),
            output_tokens=rng.randint(0, max_tokens),
            cache_write_5m_tokens=cache_5m,
            cache_write_1h_tokens=cache_1h,
            inference_geo=rng.choice([None, "us", "global"]),
            speed="fast" if fast else None,
        )
        worst = worst_case_cost(model, bound, max_tokens, cache_writes=True, fast=fast)
        assert worst >= compute_cost(model, usage)
