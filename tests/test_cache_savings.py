"""Cache efficiency (issue 15): what cache reads saved at the same model's input price, what cache writes cost."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.cache_savings import cache_efficiency
from app.pricing import cache_prices
from app.spend_rows import ModelSpend

DAY = date(2026, 10, 1)


def row(model: str, provider: str | None, reads: int, writes: int) -> ModelSpend:
    return ModelSpend(model, provider, 1, 0, Decimal(1), 1000, reads, writes, 100)


def test_reads_save_the_difference_to_input_and_writes_cost_their_price() -> None:
    prices = cache_prices("anthropic", "claude-sonnet-4-5", DAY)
    assert prices is not None
    input_price, read_price, write_price = prices
    assert read_price < input_price < write_price  # Anthropic: reads cost a tenth, writes a premium
    found = cache_efficiency([row("claude-sonnet-4-5", "anthropic", 1_000_000, 100_000)], day=DAY)
    assert found.saved_usd == 1_000_000 * (input_price - read_price)
    assert found.writes_usd == 100_000 * write_price
    assert (found.read_tokens, found.write_tokens, found.unpriced_models) == (1_000_000, 100_000, 0)


def test_unknown_models_are_left_out_and_counted() -> None:
    found = cache_efficiency(
        [row("mystery-model-x", "acme-internal", 5_000, 0), row("claude-sonnet-4-5", "anthropic", 0, 0)], day=DAY
    )
    assert (found.saved_usd, found.writes_usd, found.unpriced_models, found.has_cache) == (0, 0, 1, True)
    assert not cache_efficiency([row("claude-sonnet-4-5", "anthropic", 0, 0)], day=DAY).has_cache
