"""The ring's cap from measured timings (context_cost.py), with fake timings."""

from __future__ import annotations

import dataclasses

from llama_nvim.config import Config
from llama_nvim.context_cost import FLOOR, SETTLE, STEP, ContextCost
from llama_nvim.pacing import Pacer
from llama_nvim.protocol import Timings

PROMPT_N = 70
PREDICTED_N = 30


def reply(kv: int, ms_per_token: float, prompt_n: int = PROMPT_N) -> Timings:
    """A keystroke request's timings on a cache of ``kv`` tokens."""
    return Timings(
        prompt_n=prompt_n,
        prompt_ms=prompt_n * ms_per_token,
        predicted_n=PREDICTED_N,
        predicted_ms=PREDICTED_N * ms_per_token,
        cache_n=kv - prompt_n,
    )


def flash_attention(kv: int) -> float:
    """ms per token of work: about a microsecond per cached token (CPU flash attention)."""
    return 0.05 + kv * 0.001


def run(
    cost: ContextCost,
    config: Config,
    full_kv: int,
    rate: object,
    replies: int,
    *,
    rise: bool = True,
) -> None:
    """``replies`` keystroke requests; the cache holds the local part plus the capped ring.

    ``rise``: each request applies a higher cap at once, as if a priming came between.
    """
    local = 1000
    for _ in range(replies):
        cap = cost.cap(config, rise=rise)
        ring = full_kv - local if cap is None else min(cap, full_kv - local)
        kv = local + ring
        cost.observe(reply(kv, rate(kv)))  # type: ignore[operator]


def test_a_server_answering_within_a_key_gap_keeps_the_whole_budget() -> None:
    cost, config = ContextCost(), Config()
    run(cost, config, 7000, lambda kv: 0.5, 3 * SETTLE)  # 50 ms a request
    assert cost.cap(config) is None
    assert "within a key gap" in cost.describe(config)


def test_expensive_cached_tokens_cap_the_ring_after_one_probe() -> None:
    cost, config = ContextCost(), Config()
    run(cost, config, 7000, flash_attention, SETTLE - 1)
    assert cost.cap(config) is None  # not measured enough yet
    run(cost, config, 7000, flash_attention, 1)
    assert cost.cap(config) == FLOOR  # the probe
    assert "probing" in cost.describe(config)
    run(cost, config, 7000, flash_attention, 4 * SETTLE)
    # 100 tokens of work at 1 µs per cached token: 0.1 ms per cached token;
    # half a key gap (50 ms) buys ~500 tokens: the floor.
    assert cost.cap(config) == FLOOR
    assert round(cost.decision.us_per_kv, 2) == 1.0
    assert "at most 1024 tokens (auto: cached tokens cost time, 1.00 µs" in cost.describe(config)


def test_a_slow_server_whose_cost_does_not_grow_with_the_cache_gets_its_budget_back() -> None:
    cost, config = ContextCost(), Config()
    run(cost, config, 7000, lambda kv: 5.0, SETTLE)  # CPU-bound: 500 ms a request, flat
    assert cost.cap(config) == FLOOR  # slow: probed
    run(cost, config, 7000, lambda kv: 5.0, SETTLE)
    assert cost.cap(config) is None
    assert "cached tokens are cheap" in cost.describe(config)
    run(cost, config, 7000, lambda kv: 5.0, 4 * SETTLE)
    assert cost.cap(config) is None  # probed once only


def test_a_higher_cap_waits_for_a_priming_and_a_lower_one_applies_at_once() -> None:
    cost, config = ContextCost(), Config()
    run(cost, config, 7000, lambda kv: 5.0, SETTLE, rise=False)
    assert cost.cap(config, rise=False) == FLOOR  # the probe lowers it for requests too
    assert not cost.rise_pending(config)
    changes = cost.changes
    run(cost, config, 7000, lambda kv: 5.0, 3 * SETTLE, rise=False)
    assert cost.decision.cap is None  # decided: cached tokens are cheap
    assert cost.rise_pending(config)
    assert cost.cap(config, rise=False) == FLOOR
    assert cost.changes == changes
    assert cost.describe(config) == (
        "at most 1024 tokens until idle, then whole budget (auto: cached tokens are cheap)"
    )
    assert cost.cap(config) is None  # the priming's body
    assert cost.changes == changes + 1
    assert not cost.rise_pending(config)
    assert cost.cap(config, rise=False) is None
    assert cost.describe(config) == "whole budget (auto: cached tokens are cheap)"


def test_a_moderate_cost_leaves_room_in_whole_steps() -> None:
    cost, config = ContextCost(), Config()
    run(cost, config, 8000, lambda kv: 0.3 + kv * 0.0001, 6 * SETTLE)
    # 0.01 ms per cached token per request: 5000 tokens in half a key gap (the
    # request's own work, 30 ms, is less than that).
    assert cost.cap(config) == 4 * STEP


def test_on_a_slow_server_the_context_may_add_half_the_requests_own_time() -> None:
    cost, config = ContextCost(), Config()
    run(cost, config, 8000, lambda kv: 10.0 + kv * 0.001, 6 * SETTLE)
    # A request's own work is 1000 ms: the context may add 500 ms, at 0.1 ms
    # per cached token: 5000 tokens.
    assert cost.cap(config) == 4 * STEP


def test_the_cap_holds_for_settle_replies_and_rises_only_past_a_margin() -> None:
    cost, config = ContextCost(), Config()
    run(cost, config, 7000, flash_attention, 2 * SETTLE)
    assert cost.cap(config) == FLOOR
    # Slightly cheaper now: not enough for another step, so no change.
    run(cost, config, 7000, lambda kv: 0.05 + kv * 0.0009, 4 * SETTLE)
    assert cost.cap(config) == FLOOR


def test_cold_and_shifted_prompts_are_not_keystroke_requests() -> None:
    cost, config = ContextCost(), Config()
    for _ in range(3 * SETTLE):
        cost.observe(reply(7000, 50.0, prompt_n=4000))
    assert cost.cap(config) is None
    assert "not measured yet" in cost.describe(config)


def test_the_user_fixes_the_cap_or_turns_it_off() -> None:
    cost = ContextCost()
    run(cost, Config(), 7000, flash_attention, 4 * SETTLE)
    assert cost.cap(Config()) == FLOOR
    fixed = dataclasses.replace(Config(), ring_budget_cap=3000)
    assert cost.cap(fixed) == 3000
    assert cost.describe(fixed) == "at most 3000 tokens (set)"
    off = dataclasses.replace(Config(), ring_budget_cap=0)
    assert cost.cap(off) is None
    unpaced = dataclasses.replace(Config(), latency_target_ms=0)
    assert cost.cap(unpaced) is None
    assert cost.describe(unpaced) == "whole budget (auto off)"


def test_the_pacer_measures_only_the_requests_that_ask_for_a_suggestion() -> None:
    pacer, config = Pacer(), Config()
    for _ in range(3 * SETTLE):
        pacer.observe(reply(7000, flash_attention(7000)), 500.0, asked=0)  # priming
    assert pacer.context.cap(config) is None
    assert "not measured yet" in pacer.context.describe(config)
    for _ in range(SETTLE):
        pacer.observe(reply(7000, flash_attention(7000)), 500.0, asked=128)
    assert pacer.figures(config)["pace_ring_cap"] == FLOOR
    assert "  ring:      at most 1024 tokens (auto: probing" in "\n".join(pacer.describe(config))
