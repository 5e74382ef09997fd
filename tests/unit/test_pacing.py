"""pacing: estimates from replies' timings, and the pacing derived from them.

The pacer is pure: replies are synthetic ``Timings`` with a time on the wire,
as the sender measures it with its clock. The engine tests at the end use
tests/unit/engine_fixture.py's fake server (whose replies report the timings)
and fake clock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llama_nvim.config import Config, parse_config
from llama_nvim.engine import Engine
from llama_nvim.pacing import (
    DEBOUNCE_CAP_MS,
    KEY_GAP_MS,
    MIN_SAMPLES,
    N_PREDICT_FLOOR,
    T_MAX_PREDICT_FLOOR_MS,
    Pacer,
    configured,
)
from llama_nvim.protocol import Timings
from tests.unit.engine_fixture import (
    FakeServer,
    event,
    finish,
    make_config,
    make_engine,
    ok,
    reply_to,
    send,
    settle,
    turns,
)

# A keystroke request on the tiny test model: 20 tokens computed, 30 generated, fast.
FAST = Timings(prompt_n=20, prompt_ms=4.0, predicted_n=30, predicted_ms=15.0)
# A server slower than the typist: 2 ms per prompt token, 8 ms per generated token.
SLOW = Timings(prompt_n=40, prompt_ms=80.0, predicted_n=32, predicted_ms=256.0)


def config(**options: Any) -> Config:
    """A config as g:llama_config ``options`` give it (the user's keys recorded)."""
    parsed, problems = parse_config(options)
    assert problems == []
    return parsed


def measured(timings: Timings, replies: int = MIN_SAMPLES, round_trip_ms: float = 10.0) -> Pacer:
    """A pacer that saw ``replies`` replies with ``timings``."""
    pacer = Pacer()
    for _ in range(replies):
        wall = timings.prompt_ms + timings.predicted_ms + round_trip_ms
        pacer.observe(timings, wall, asked=128)
    return pacer


def test_the_config_records_which_options_the_user_set() -> None:
    raw = {
        "n_predict": 128,  # the default, but set
        "endpoint_fim": "http://127.0.0.1:9/infill",  # llama.vim's name for endpoint
        "debounce_ms": "soon",  # invalid: the default is used, as if not set
        "no_such_option": 1,
    }
    parsed, _ = parse_config(raw)
    assert parsed.given == {"n_predict", "endpoint"}
    assert Config().given == frozenset()
    assert parse_config({})[0].given == frozenset()


def test_before_any_reply_the_configured_values_are_used() -> None:
    pacer = Pacer()
    assert pacer.estimates is None
    assert pacer.pacing(Config()) == configured(Config())
    defaults = pacer.pacing(Config())
    assert (defaults.debounce_ms, defaults.n_predict, defaults.t_max_predict_ms) == (10, 128, 250)
    assert not defaults.auto


def test_until_enough_replies_are_measured_the_pacing_stays_configured() -> None:
    pacer = measured(SLOW, replies=MIN_SAMPLES - 1)
    assert pacer.estimates is None
    assert pacer.pacing(Config()) == configured(Config())
    pacer.observe(SLOW, 346.0, asked=128)
    assert pacer.pacing(Config()) != configured(Config())


def test_estimates_are_the_servers_speed_per_token_and_the_round_trip() -> None:
    estimates = measured(SLOW, round_trip_ms=10.0).estimates
    assert estimates is not None
    assert estimates.samples == MIN_SAMPLES
    assert estimates.prompt_ms_per_token == pytest.approx(2.0)
    assert estimates.predicted_ms_per_token == pytest.approx(8.0)
    assert estimates.overhead_ms == pytest.approx(10.0)
    assert estimates.prompt_tokens == 40
    assert estimates.predicted_tokens == 32
    assert estimates.request_ms(32) == pytest.approx(10 + 80 + 256)


def test_a_fast_server_asks_at_once_for_the_full_suggestion() -> None:
    pacing = measured(FAST).pacing(Config())
    assert pacing.debounce_ms == Config().debounce_ms
    assert pacing.n_predict == Config().n_predict
    assert pacing.t_max_predict_ms == Config().t_max_predict_ms_first
    assert pacing.auto == {"debounce_ms", "n_predict", "t_max_predict_ms"}
    assert pacing.pause_ms <= Config().latency_target_ms


def test_a_slow_server_waits_for_a_pause_and_asks_for_what_fits_the_target() -> None:
    pacing = measured(SLOW).pacing(Config())
    fast = measured(FAST).pacing(Config())
    assert pacing.debounce_ms > fast.debounce_ms
    assert pacing.debounce_ms <= DEBOUNCE_CAP_MS
    assert N_PREDICT_FLOOR <= pacing.n_predict < fast.n_predict
    # The worst case after a pause: the request in flight, the debounce, the new request.
    estimates = measured(SLOW).estimates
    assert estimates is not None
    share = (Config().latency_target_ms - pacing.debounce_ms) / 2
    assert estimates.base_ms + pacing.t_max_predict_ms <= share
    request = estimates.request_ms(pacing.n_predict)
    assert 2 * request + pacing.debounce_ms <= Config().latency_target_ms
    # ... and one token more would not fit.
    longer = estimates.request_ms(pacing.n_predict + 1)
    assert 2 * longer + pacing.debounce_ms > Config().latency_target_ms
    assert pacing.pause_ms == round(2 * request + pacing.debounce_ms)


def test_the_debounce_follows_how_long_answers_take_not_how_long_they_may_be() -> None:
    # 128 tokens would outlast a gap between keys; the 16 that answers have do not.
    short_answers = Timings(prompt_n=20, prompt_ms=4.0, predicted_n=16, predicted_ms=12.0)
    pacing = measured(short_answers, round_trip_ms=60.0).pacing(Config())
    assert pacing.request_ms > KEY_GAP_MS
    assert pacing.debounce_ms == Config().debounce_ms
    assert pacing.n_predict == Config().n_predict
    long_answers = Timings(prompt_n=20, prompt_ms=4.0, predicted_n=128, predicted_ms=96.0)
    assert measured(long_answers, round_trip_ms=60.0).pacing(Config()).debounce_ms > 10


def test_a_slower_server_gets_a_longer_debounce_and_shorter_limits() -> None:
    slower = Timings(prompt_n=40, prompt_ms=160.0, predicted_n=32, predicted_ms=320.0)
    slow, slower_pacing = measured(SLOW).pacing(Config()), measured(slower).pacing(Config())
    assert slower_pacing.n_predict < slow.n_predict
    assert T_MAX_PREDICT_FLOOR_MS < slower_pacing.t_max_predict_ms < slow.t_max_predict_ms
    assert slower_pacing.debounce_ms >= slow.debounce_ms


def test_a_server_too_slow_for_the_target_gets_the_floors() -> None:
    crawling = Timings(prompt_n=50, prompt_ms=2000.0, predicted_n=32, predicted_ms=3200.0)
    pacing = measured(crawling).pacing(Config())
    assert pacing.n_predict == N_PREDICT_FLOOR
    assert pacing.t_max_predict_ms == T_MAX_PREDICT_FLOOR_MS
    assert pacing.debounce_ms == DEBOUNCE_CAP_MS
    assert pacing.pause_ms > Config().latency_target_ms


def test_a_longer_target_allows_longer_suggestions() -> None:
    pacer = measured(SLOW)
    short, long = pacer.pacing(config(latency_target_ms=800)), pacer.pacing(config())
    assert short.n_predict < long.n_predict


def test_values_the_user_set_are_never_changed() -> None:
    pacer = measured(SLOW)
    fixed = config(debounce_ms=0, n_predict=64, t_max_predict_ms_first=400)
    pacing = pacer.pacing(fixed)
    assert (pacing.debounce_ms, pacing.n_predict, pacing.t_max_predict_ms) == (0, 64, 400)
    assert not pacing.auto


def test_a_value_set_to_its_default_is_still_the_users() -> None:
    pacing = measured(SLOW).pacing(config(n_predict=128))
    assert pacing.n_predict == 128
    assert "n_predict" not in pacing.auto
    assert "debounce_ms" in pacing.auto


def test_the_background_time_limit_fixes_the_time_limit_too() -> None:
    pacing = measured(SLOW).pacing(config(t_max_predict_ms=2000))
    assert pacing.t_max_predict_ms == Config().t_max_predict_ms_first
    assert "t_max_predict_ms" not in pacing.auto
    assert {"debounce_ms", "n_predict"} <= pacing.auto


def test_a_fixed_n_predict_still_paces_the_debounce_for_its_length() -> None:
    short = measured(SLOW).pacing(config(n_predict=16))
    long = measured(SLOW).pacing(config(n_predict=64))
    assert short.debounce_ms < long.debounce_ms


def test_a_fixed_debounce_leaves_the_rest_of_the_target_to_the_requests() -> None:
    pacer = measured(SLOW)
    quick = pacer.pacing(config(debounce_ms=0))
    patient = pacer.pacing(config(debounce_ms=200))
    assert quick.n_predict > patient.n_predict


def test_a_target_of_zero_turns_pacing_off() -> None:
    off = config(latency_target_ms=0)
    assert measured(SLOW).pacing(off) == configured(off)
    assert measured(FAST).pacing(off) == configured(off)


def test_the_configured_maximum_caps_the_automatic_n_predict() -> None:
    assert measured(FAST).pacing(config(n_predict=40, debounce_ms=10)).n_predict == 40
    capped = Config(n_predict=40)  # set without g:llama_config: still automatic, capped
    pacing = measured(FAST).pacing(capped)
    assert pacing.n_predict == 40
    assert "n_predict" in pacing.auto


def test_one_odd_reply_does_not_swing_the_pacing() -> None:
    pacer = measured(SLOW, replies=8)
    before = pacer.pacing(Config())
    # A cold prompt of thousands of tokens, then a reply held up by a busy machine.
    pacer.observe(Timings(4000, 16000.0, 32, 400.0), 16500.0, asked=128)
    pacer.observe(Timings(40, 80.0, 32, 4000.0), 9000.0, asked=128)
    assert pacer.pacing(Config()) == before


def test_the_estimates_follow_a_lasting_change_of_speed() -> None:
    pacer = measured(SLOW, replies=8)
    for _ in range(10):
        pacer.observe(FAST, FAST.prompt_ms + FAST.predicted_ms + 10.0, asked=128)
    assert pacer.pacing(Config()) == measured(FAST).pacing(Config())


def test_priming_and_replies_without_work_are_not_measured() -> None:
    pacer = Pacer()
    for _ in range(5):
        pacer.observe(Timings(4000, 8000.0, 0, 0.0), 8100.0, asked=0)  # priming
        pacer.observe(Timings(), 5.0, asked=128)  # a server that reports no timings
    assert pacer.samples == 0
    assert pacer.estimates is None


def test_rates_are_not_taken_from_a_handful_of_tokens() -> None:
    pacer = measured(SLOW)
    # All cached but the last token, and an answer of one token: per-batch costs, not rates.
    for _ in range(10):
        pacer.observe(Timings(1, 30.0, 1, 40.0), 80.0, asked=128)
    estimates = pacer.estimates
    assert estimates is not None
    assert estimates.prompt_ms_per_token == pytest.approx(2.0)
    assert estimates.predicted_ms_per_token == pytest.approx(8.0)
    # They do count as requests that compute little.
    assert estimates.prompt_tokens == 1


def test_figures_give_the_estimates_and_the_pacing_as_integers() -> None:
    cold = Pacer().figures(Config())
    assert cold["pace_samples"] == 0
    assert cold["pace_prompt_us_per_token"] == 0
    assert cold["pace_n_predict"] == 128
    figures = measured(SLOW).figures(Config())
    pacing = measured(SLOW).pacing(Config())
    assert figures == {
        "pace_samples": MIN_SAMPLES,
        "pace_prompt_us_per_token": 2000,
        "pace_predicted_us_per_token": 8000,
        "pace_debounce_ms": pacing.debounce_ms,
        "pace_n_predict": pacing.n_predict,
        "pace_t_max_predict_ms": pacing.t_max_predict_ms,
        "pace_ring_cap": 0,
        "pace_ring_rise_pending": 0,
        "pace_us_per_cached_token": 0,
    }


def test_status_tells_the_speed_and_where_each_value_comes_from() -> None:
    cold = "\n".join(Pacer().describe(Config()))
    assert "not measured yet (0 replies)" in cold
    assert "debounce_ms 10 (default), n_predict 128 (default)" in cold
    pacer = measured(SLOW)
    text = "\n".join(pacer.describe(config(debounce_ms=50)))
    pacing = pacer.pacing(config(debounce_ms=50))
    assert "prompt 2.00 ms/token (40 computed per request)" in text
    assert "generation 8.00 ms/token" in text
    assert "(3 replies)" in text
    assert "target 1000 ms" in text
    assert "debounce_ms 50 (set)" in text
    assert f"n_predict {pacing.n_predict} (auto)" in text
    assert f"t_max_predict_ms {pacing.t_max_predict_ms} (auto)" in text
    assert f"after a pause at most ~{pacing.pause_ms} ms" in text
    # The pacing line's continuation comes right after it, not after the ring's.
    pacing_at = next(i for i, line in enumerate(text.split("\n")) if "pacing:" in line)
    assert "after a pause" in text.split("\n")[pacing_at + 1]
    off = "\n".join(pacer.describe(config(latency_target_ms=0)))
    assert "off (latency_target_ms = 0)" in off
    assert "n_predict 128 (default)" in off


# -- in the engine: replies' timings pace the next request -------------------------------------


def answering(timings: Timings) -> FakeServer:
    """A fake server whose replies report ``timings``."""
    server = FakeServer()
    server.answer = lambda body: ok(
        reply_to(body["prompt"]),
        **{
            "timings/prompt_n": timings.prompt_n,
            "timings/prompt_ms": timings.prompt_ms,
            "timings/predicted_n": timings.predicted_n,
            "timings/predicted_ms": timings.predicted_ms,
        },
    )
    return server


async def warm_up(engine: Engine, server: FakeServer) -> None:
    """Enough requests, each at a new place, for the pacer to measure the server."""
    for i in range(MIN_SAMPLES):
        send(engine, "keystroke", event(f"warm{i} = ", above=(f"def w{i}():",), tick=i + 1))
        await settle()
    assert len(server.bodies) == MIN_SAMPLES


async def request_after_warm_up(
    timings: Timings, config: Config
) -> tuple[Engine, dict[str, Any], dict[str, int]]:
    """The engine, the body of the first request after the warm-up, LlamaNvimStats() then."""
    server = answering(timings)
    engine, _ = make_engine(server, config)
    await warm_up(engine, server)
    send(engine, "keystroke", event("y = ", tick=10))
    await settle()
    body, figures = server.bodies[-1], engine.figures()
    await finish(engine)
    return engine, body, figures


# The two speeds as the engine sees them: its fake clock stands still, so no round trip.
ENGINE_SLOW = Timings(prompt_n=40, prompt_ms=160.0, predicted_n=32, predicted_ms=320.0)


def test_replies_from_a_slow_server_shorten_the_next_request() -> None:
    config = make_config()
    engine, body, figures = asyncio.run(request_after_warm_up(ENGINE_SLOW, config))
    pacing = engine.sender.pacer.pacing(config)
    assert "n_predict" in pacing.auto
    assert body["n_predict"] == pacing.n_predict < config.n_predict
    assert body["t_max_predict_ms"] == pacing.t_max_predict_ms < config.t_max_predict_ms_first
    assert figures["pace_samples"] == MIN_SAMPLES + 1
    assert figures["pace_n_predict"] == body["n_predict"]
    assert figures["pace_debounce_ms"] > config.debounce_ms


def test_replies_from_a_fast_server_keep_the_full_request() -> None:
    config = make_config()
    _, body, figures = asyncio.run(request_after_warm_up(FAST, config))
    assert body["n_predict"] == config.n_predict
    assert body["t_max_predict_ms"] == config.t_max_predict_ms_first
    assert figures["pace_samples"] == MIN_SAMPLES + 1
    assert figures["pace_debounce_ms"] == config.debounce_ms


def test_the_users_n_predict_is_sent_whatever_the_servers_speed() -> None:
    config, _ = parse_config({"debounce_ms": 0, "speculative": False, "n_predict": 64})
    engine, body, _ = asyncio.run(request_after_warm_up(ENGINE_SLOW, config))
    assert body["n_predict"] == 64
    assert engine.sender.pacer.pacing(config).auto == {"t_max_predict_ms"}  # not set: paced


def test_with_a_target_of_zero_the_configured_request_is_sent() -> None:
    config = make_config(latency_target_ms=0)
    engine, body, _ = asyncio.run(request_after_warm_up(ENGINE_SLOW, config))
    assert engine.sender.pacer.estimates is not None  # measured, but not used
    assert body["n_predict"] == config.n_predict
    assert body["t_max_predict_ms"] == config.t_max_predict_ms_first


async def key_then_next_key(timings: Timings) -> tuple[list[str], list[str]]:
    """After the warm-up, type a key and, before its request is due, the next one.

    Returns the prompts that reached the server once the first key's request
    was due (had there been no debounce), and at the end.
    """
    server = answering(timings)
    engine, _ = make_engine(server, make_config())
    await warm_up(engine, server)
    before = len(server.bodies)
    send(engine, "keystroke", event("z = a", tick=20))
    await turns(20)  # ample for a request without debounce to reach the server
    due = server.prompts()[before:]
    send(engine, "keystroke", event("z = ab", tick=21))
    await finish(engine)
    return due, server.prompts()[before:]


def test_on_a_slow_server_a_key_typed_within_the_debounce_costs_no_request() -> None:
    due, sent = asyncio.run(key_then_next_key(ENGINE_SLOW))
    assert due == []
    assert len(sent) == 1, sent  # only the newest text was asked for


def test_on_a_fast_server_each_key_asks_at_once() -> None:
    due, sent = asyncio.run(key_then_next_key(FAST))
    assert len(due) == 1
    assert len(sent) >= 1


def test_on_a_slow_server_the_fetch_ahead_is_paced_like_the_users_requests() -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any], Config, Engine]:
        config = make_config(speculative=True, speculative_delay_ms=0)
        server = answering(ENGINE_SLOW)
        engine, _ = make_engine(server, config)
        for i in range(MIN_SAMPLES):  # each reply measured (and each fetched ahead of)
            send(engine, "keystroke", event(f"warm{i} = ", above=(f"def w{i}():",), tick=i + 1))
            await settle()
        send(engine, "keystroke", event("y = ", tick=10))
        prompts = [body["prompt"] for body in server.bodies]
        for _ in range(500):  # the user's request, then (after the paced delay) the fetch ahead
            prompts = [body["prompt"] for body in server.bodies]
            if "y = " in prompts and prompts[-1] != "y = ":
                break
            await asyncio.sleep(0.01)
        asked, ahead = server.bodies[prompts.index("y = ")], server.bodies[-1]
        await finish(engine)
        return asked, ahead, config, engine

    asked, ahead, config, engine = asyncio.run(main())
    pacing = engine.sender.pacer.pacing(config)
    assert asked["prompt"] == "y = "
    assert ahead["prompt"].startswith("y = ")
    assert ahead["prompt"] != asked["prompt"]
    assert ahead["n_predict"] == pacing.n_predict < config.n_predict
    assert ahead["t_max_predict_ms"] == pacing.t_max_predict_ms
