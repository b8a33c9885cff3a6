"""Cache efficiency (issue 15): what cache reads saved at the same model's input price on the day of the call, what
cache writes cost, and which sessions read their cache far less than the repository's usual."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cache_savings import (
    FAR_BELOW,
    MIN_SESSION_INPUT,
    CacheDay,
    SessionCache,
    cache_efficiency,
    cache_json,
    low_cache_sessions,
)
from app.pricing import cache_prices

DAY = date(2026, 10, 1)
# genai-prices changes this model's price on 2026-10-18 (input 0.0805 → 0.14, cache read 0.0165 → 0.0028 per MTok).
REPRICED = ("deepseek/deepseek-v4-flash", "avian")


def group(model: str, provider: str | None, reads: int, writes: int, day: date = DAY) -> CacheDay:
    return CacheDay(model, provider, day, reads, writes)


def test_reads_save_the_difference_to_input_and_writes_cost_their_price() -> None:
    prices = cache_prices("anthropic", "claude-sonnet-4-5", DAY)
    assert prices is not None
    input_price, read_price, write_price = prices
    assert read_price < input_price < write_price  # Anthropic: reads cost a tenth, writes a premium
    found = cache_efficiency([group("claude-sonnet-4-5", "anthropic", 1_000_000, 100_000)])
    assert found.saved_usd == 1_000_000 * (input_price - read_price)
    assert found.writes_usd == 100_000 * write_price
    assert (found.read_tokens, found.write_tokens, found.unpriced_models, found.is_priced) == (
        1_000_000, 100_000, 0, True,
    )  # fmt: skip


def test_each_day_is_priced_at_that_days_price() -> None:
    before, after = date(2026, 10, 17), date(2026, 10, 18)
    old, new = cache_prices(REPRICED[1], REPRICED[0], before), cache_prices(REPRICED[1], REPRICED[0], after)
    assert old is not None and new is not None and old != new  # the snapshot really changed the price that day
    found = cache_efficiency([group(*REPRICED, 1_000_000, 0, before), group(*REPRICED, 2_000_000, 0, after)])
    assert found.saved_usd == 1_000_000 * (old[0] - old[1]) + 2_000_000 * (new[0] - new[1])
    assert found.priced_models == 1  # one model, whatever the number of its days


def test_unknown_models_are_left_out_and_counted() -> None:
    found = cache_efficiency(
        [group("mystery-model-x", "acme-internal", 5_000, 0), group("claude-sonnet-4-5", "anthropic", 0, 0)]
    )
    assert (found.saved_usd, found.writes_usd, found.unpriced_models, found.has_cache) == (0, 0, 1, True)
    assert not found.is_priced  # the comment then says nothing rather than "$0.00 saved"
    assert cache_json(found, None)["reads_saved_usd"] is None
    assert not cache_efficiency([group("claude-sonnet-4-5", "anthropic", 0, 0)]).has_cache


def test_spellings_of_one_model_count_once_as_unpriced_or_priced() -> None:
    found = cache_efficiency(
        [
            group("claude-sonnet-4-5-20250929", "anthropic", 10, 0),
            group("anthropic/claude-sonnet-4-5", None, 10, 0),
            group("mystery-model-x", None, 10, 0),
            group("mystery-model-x", None, 10, 0, date(2026, 10, 2)),
        ]
    )
    assert (found.priced_models, found.unpriced_models) == (1, 1)


def session(name: str, reads: int, *, input_tokens: int = 0, writes: int = 0, cost: str = "1") -> SessionCache:
    return SessionCache(name, ("claude-code",), ("claude-sonnet-4-5",), 3, Decimal(cost), 0, input_tokens, reads,
                        writes)  # fmt: skip


def test_sessions_under_half_the_median_are_listed_and_the_boundary_is_not() -> None:
    median = Decimal("0.8")
    threshold = median * FAR_BELOW  # 0.4
    at_threshold = session("at", 40_000, input_tokens=60_000)  # exactly 0.4 of 100,000: not far below
    just_under = session("under", 39_999, input_tokens=60_001)
    tiny = session("tiny", 0, input_tokens=MIN_SESSION_INPUT - 1)  # too small to say anything
    found = low_cache_sessions([at_threshold, just_under, tiny], [Decimal("0.7"), median, Decimal("0.9")])
    assert (found.median_share, found.threshold, found.compared) == (median, threshold, 3)
    assert [s.session_id for s in found.sessions] == ["under"]
    assert at_threshold.share == threshold and just_under.share < threshold


def test_nothing_is_listed_without_a_median() -> None:
    low = session("low", 0, input_tokens=1_000_000)
    assert low_cache_sessions([low], []).sessions == ()
    assert low_cache_sessions([low], [Decimal(0), Decimal(0)]).sessions == ()  # nothing is below a median of 0


@given(
    st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**6)), max_size=12),
    st.lists(st.fractions(0, 1).map(lambda f: Decimal(f.numerator) / Decimal(f.denominator)), max_size=9),
)
def test_the_list_is_exactly_the_sessions_under_the_threshold(
    tokens: list[tuple[int, int, int]], shares: list[Decimal]
) -> None:
    sessions = [session(f"s{i}", r, input_tokens=n, writes=w) for i, (n, r, w) in enumerate(tokens)]
    found = low_cache_sessions(sessions, shares)
    ordered = sorted(shares)
    middle = len(ordered) // 2
    median = (
        None if not ordered else ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    )
    expected = set()
    if median:
        for s in sessions:
            total = s.input_tokens + s.cache_read_tokens + s.cache_write_tokens
            if total >= MIN_SESSION_INPUT and Decimal(s.cache_read_tokens) / total < median / 2:
                expected.add(s.session_id)
    assert {s.session_id for s in found.sessions} == expected


@pytest.mark.parametrize("reads", [0, 1])
def test_cache_json_keeps_money_as_strings(reads: int) -> None:
    found = cache_efficiency([group("claude-sonnet-4-5", "anthropic", reads * 1_000_000, 0)])
    body = cache_json(found, Decimal("0.5"))
    assert body["cache_read_share"] == "0.5000"
    assert isinstance(body["reads_saved_usd"], str) and isinstance(body["writes_cost_usd"], str)
