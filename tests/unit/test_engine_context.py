"""engine.Engine with its ring, cache and speculation, against a fake llama-server.

The fixtures (fake server, editor, clock, CharTokens) are tests/unit/engine_fixture.py's.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from llama_nvim.context import LocalContext, accepted_snapshot, build_local_context
from llama_nvim.engine import Engine
from llama_nvim.priming import IDLE_AFTER_S
from llama_nvim.request_builder import BUDGET_FRAMING, BUDGET_SLACK
from tests.bench.naive import NaiveShaping
from tests.unit.engine_fixture import (
    Clock,
    FakeEditor,
    FakeServer,
    event,
    finish,
    make_config,
    make_engine,
    ok,
    reply_to,
    send,
    settle,
    snapshot_of,
    turns,
)


def chunk_lines(tag: str) -> list[str]:
    """Three lines whose words no other tag shares."""
    return [f"{tag}_{i} = {tag}{i}()" for i in range(3)]


def chunk_text(tag: str) -> str:
    return "".join(f"{line}\n" for line in chunk_lines(tag))


def chunk_event(path: str, tag: str, *, filetype: str = "python") -> dict[str, Any]:
    return {"lines": chunk_lines(tag), "filename": path, "filetype": filetype, "cwd": "/nowhere"}


def names(body: dict[str, Any]) -> list[str]:
    return [extra["filename"] for extra in body["input_extra"]]


@pytest.fixture
def projects(tmp_path: Path) -> tuple[Path, Path]:
    """Two git projects, a and b."""
    roots = (tmp_path / "a", tmp_path / "b")
    for root in roots:
        (root / ".git").mkdir(parents=True)
    return roots


def in_project(root: Path, name: str) -> str:
    return str(root / name)


def admit_all(engine: Engine, paths_and_tags: list[tuple[str, str]]) -> None:
    for path, tag in paths_and_tags:
        send(engine, "chunk", chunk_event(path, tag))
    while engine.ring.admit_one() is not None:
        pass


# -- the cache ---------------------------------------------------------------------------------


def test_a_cache_hit_is_shown_at_once_without_a_request() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        assert len(editor.shown) == 1
        send(engine, "keystroke", event("x = ", tick=2))
        # shown inside on_keystroke: no loop turn, no request
        assert len(editor.shown) == 2
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = "]
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")]] * 2
    assert editor.shown[1].snapshot.tick == 2
    assert editor.shown[1].info.startswith("llama: cached")
    assert engine.counters.cache_hits == 1
    assert engine.counters.requests == 1


def test_typing_through_a_cached_suggestion_is_shown_at_once() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.answer = lambda body: ok("foo(1, 2)\nbar()")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event("x = fo", tick=2))
        assert editor.shown[-1].lines == ["o(1, 2)", "bar()"]
        send(engine, "keystroke", event("x = foo(1,", tick=3))
        assert editor.shown[-1].lines == [" 2)", "bar()"]
        assert editor.shown[-1].snapshot.before == "x = foo(1,"
        await settle()
        assert len(server.bodies) == 1
        # a character the suggestion does not have: ask the server
        send(engine, "keystroke", event("x = foo(1,3", tick=4))
        assert len(editor.shown) == 3
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = foo(1,3"]
    assert engine.counters.cache_hits == 2
    assert len(editor.shown) == 4


def test_without_a_cache_every_keystroke_asks_the_server() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(max_cache_keys=0, speculative=True))
        for tick in (1, 2):
            send(engine, "keystroke", event("x = ", tick=tick))
            await settle()
        await engine.close()
        return engine, server

    engine, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = "]  # no speculation without a cache either
    assert engine.counters.cache_hits == 0
    assert engine.counters.speculative == 0


# -- speculation -------------------------------------------------------------------------------


def accepted_context_of(engine: Engine, ev: dict[str, Any], lines: list[str]) -> LocalContext:
    config = engine.config
    after = accepted_snapshot(
        snapshot_of(ev),
        lines,
        n_prefix=config.n_prefix,
        max_prefix_bytes=config.max_prefix_bytes,
        max_line_bytes=config.max_line_bytes,
    )
    return build_local_context(after)


def test_a_speculative_reply_goes_into_the_cache_and_is_never_shown() -> None:
    first = event("x = ")
    accepted = "x = " + reply_to("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", first)
        await settle()
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", accepted]
    speculative = server.bodies[1]
    assert speculative["t_max_predict_ms"] == engine.config.t_max_predict_ms
    assert speculative["input_prefix"] == "def f():\n"
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")]]
    hit = engine.cache.get(accepted_context_of(engine, first, [reply_to("x = ")]))
    assert hit is not None
    assert hit.lines == [reply_to(accepted)]
    assert engine.counters.speculative == 1
    assert engine.counters.user_requests == 1


def test_speculation_for_a_multi_line_suggestion_predicts_the_next_line() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        server.answer = lambda body: ok("foo(\n    1,\n)" if body["prompt"] == "x = " else "z")
        engine, _ = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = ", below=("print(x)",)))
        await finish(engine)
        return server

    speculative = asyncio.run(main()).bodies[1]
    assert speculative["input_prefix"] == "def f():\nx = foo(\n    1,\n"
    assert speculative["prompt"] == ")"
    assert speculative["input_suffix"] == "\nprint(x)\n"


def test_speculation_in_flight_is_adopted_when_the_user_gets_there() -> None:
    accepted = "x = " + reply_to("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.hold_when(lambda body: body["prompt"] == accepted)
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        assert (await server.next_request())["prompt"] == accepted  # held
        send(engine, "keystroke", event(accepted, tick=2))  # the user accepts
        await turns(20)
        assert len(server.bodies) == 2, "no second request for the same state"
        assert len(editor.shown) == 1
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", accepted, accepted + reply_to(accepted)]
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")], [reply_to(accepted)]]
    assert editor.shown[1].snapshot.tick == 2
    assert editor.shown[1].info.startswith("llama: cached")
    assert engine.counters.speculative_adopted == 1
    assert engine.counters.user_requests == 1
    assert server.cancelled == 0
    assert server.peak == 1


def test_speculation_in_flight_is_cancelled_when_the_user_does_something_else() -> None:
    accepted = "x = " + reply_to("x = ")
    first = event("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.hold_when(lambda body: body["prompt"] == accepted)
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", first)
        await server.next_request()
        await server.next_request()  # the speculative one, held
        send(engine, "keystroke", event("x = 99", tick=2))
        assert (await server.next_request())["prompt"] == "x = 99"
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.cancelled == 1
    assert engine.counters.cancelled == 1
    assert server.peak == 1
    assert [plan.snapshot.tick for plan in editor.shown] == [1, 2]
    assert engine.counters.speculative_adopted == 0
    # the cancelled speculation left nothing in the cache
    assert engine.cache.get(accepted_context_of(engine, first, [reply_to("x = ")])) is None


def test_no_speculation_when_the_next_state_is_already_cached() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event("x = ", tick=2))  # cache hit; next state cached too
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert len(server.bodies) == 2
    assert engine.counters.speculative == 1


def test_a_cache_hit_speculates_one_step_further() -> None:
    accepted = "x = " + reply_to("x = ")

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event(accepted, tick=2))  # answered from the speculative reply
        await finish(engine)
        return server

    assert asyncio.run(main()).prompts() == [
        "x = ",
        accepted,
        accepted + reply_to(accepted),
    ]


def test_speculation_waits_for_the_suggestion_to_stay_on_screen() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True, speculative_delay_ms=30))
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        await turns(50)
        assert server.prompts() == ["x = "], "no speculation before the delay"
        await server.next_request()  # after the delay
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = " + reply_to("x = ")]
    assert engine.counters.speculative == 1


def test_typing_on_during_the_delay_sends_no_speculation() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        config = make_config(speculative=True, speculative_delay_ms=10_000)
        engine, _ = make_engine(server, config)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        await turns(20)
        send(engine, "keystroke", event("x = 9", tick=2))  # the hint flashed by
        await server.next_request()
        await turns(20)
        await engine.close()
        await settle()
        return engine, server

    engine, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = 9"]
    assert engine.counters.speculative == 0
    assert server.peak == 1


def test_accepting_during_the_delay_sends_the_speculation_at_once() -> None:
    accepted = "x = " + reply_to("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        config = make_config(speculative=True, speculative_delay_ms=10_000)
        engine, editor = make_engine(server, config)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        await turns(20)
        send(engine, "keystroke", event(accepted, tick=2))
        assert (await server.next_request())["prompt"] == accepted
        await turns(20)
        await engine.close()
        await settle()
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", accepted]
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")], [reply_to(accepted)]]
    assert engine.counters.speculative_adopted == 1
    assert engine.counters.user_requests == 1


def test_at_most_one_request_is_ever_in_flight_while_typing_and_accepting() -> None:
    # A seeded session of typing, accepting and retyping against a server whose
    # replies are held back at random; the server counts /infill in flight.
    rng = random.Random(7)

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        server.hold_when(lambda body: True)
        server.gate.set()
        engine, editor = make_engine(server, make_config(speculative=True))
        text = "v = "
        for tick in range(1, 300):
            action = rng.random()
            if action < 0.4 and editor.shown:
                text = editor.shown[-1].snapshot.before + editor.shown[-1].lines[0]  # accept
            elif action < 0.8:
                text += rng.choice("abc(")
            elif action < 0.9:
                text = text[:-1] or "v"
            send(engine, "keystroke", event(text, tick=tick))
            pause = rng.random()
            if pause < 0.3:
                server.gate.clear()
            elif pause < 0.6:
                server.gate.set()
            if pause < 0.85:
                await turns(rng.randrange(8))
            else:  # the user waits for the suggestion
                server.gate.set()
                await settle()
            assert server.peak <= 1, f"two requests in flight at keystroke {tick}"
        server.gate.set()
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.peak == 1
    counters = engine.counters
    # the session went through every path
    assert counters.speculative > 5
    assert counters.speculative_adopted > 0
    assert counters.cache_hits > 5
    assert counters.cancelled > 5
    assert server.cancelled > 0


# -- other suggestions (next / previous) -----------------------------------------------------


def cycle_event(step: int, shown: list[str], **fields: Any) -> dict[str, Any]:
    return {**event(**fields), "step": step, "shown": shown}


def explored(server: FakeServer) -> list[dict[str, Any]]:
    return [body for body in server.bodies if "temperature" in body["samplers"]]


def test_next_fetches_another_suggestion_and_previous_recalls_the_first() -> None:
    async def main() -> tuple[FakeServer, FakeEditor]:
        server = FakeServer()
        replies = iter(["first", "second"])
        server.answer = lambda body: ok(next(replies))
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        assert editor.shown[-1].lines == ["first"]
        send(engine, "cycle", cycle_event(1, ["first"]))
        await settle()
        send(engine, "cycle", cycle_event(-1, ["second"]))
        send(engine, "cycle", cycle_event(1, ["first"]))
        await finish(engine)
        return server, editor

    server, editor = asyncio.run(main())
    assert [plan.lines for plan in editor.shown] == [["first"], ["second"], ["first"], ["second"]]
    assert ["suggestion 2/2" in plan.info for plan in editor.shown] == [False, True, False, True]
    assert "suggestion 1/2" in editor.shown[2].info
    (request,) = explored(server)  # recalling needs no request
    assert request["samplers"] == ["top_k", "top_p", "temperature"]
    assert request["prompt"] == "x = "
    assert request["cache_prompt"] is True


def test_a_repeated_suggestion_is_asked_again_then_the_user_is_told() -> None:
    async def main() -> tuple[FakeServer, FakeEditor]:
        server = FakeServer()
        server.answer = lambda body: ok("same")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "cycle", cycle_event(1, ["same"]))
        await finish(engine)
        return server, editor

    server, editor = asyncio.run(main())
    assert len(explored(server)) == 3
    assert [plan.lines for plan in editor.shown] == [["same"]]
    assert editor.messages == [("llama.nvim: no other suggestion here", False)]


def test_a_keystroke_makes_a_pending_alternative_stale() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        server.hold_when(lambda body: "temperature" in body["samplers"])
        server.answer = lambda body: ok("other" if server.hold(body) else "first")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "cycle", cycle_event(1, ["first"]))
        await server.next_request()
        send(engine, "keystroke", event("x = y", tick=2))
        server.gate.set()
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    assert all(plan.lines != ["other"] for plan in editor.shown)


def test_cycling_somewhere_new_starts_from_what_is_shown_there() -> None:
    # After type-through the hint on screen is the rest of the old one: that is
    # the first suggestion of the new place.
    async def main() -> FakeEditor:
        server = FakeServer()
        replies = iter(["abc", "zz", "yy"])
        server.answer = lambda body: ok(next(replies))
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "cycle", cycle_event(1, ["abc"]))
        await settle()
        send(engine, "cycle", cycle_event(1, ["c"], before="x = ab", tick=3))
        await settle()
        send(engine, "cycle", cycle_event(-1, ["yy"], before="x = ab", tick=3))
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    assert [plan.lines for plan in editor.shown] == [["abc"], ["zz"], ["yy"], ["c"]]
    assert "suggestion 1/2" in editor.shown[-1].info


# -- priming -------------------------------------------------------------------------------


def test_priming_sends_n_predict_zero_with_the_current_projects_chunks(
    projects: tuple[Path, Path],
) -> None:
    a, b = projects

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "main.py"), "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        send(engine, "chunk", chunk_event(in_project(b, "other.py"), "b1"))
        send(engine, "chunk", chunk_event(in_project(a, "pkg/two.py"), "a2"))
        for _ in range(3):
            await engine.priming.admit_and_prime()
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    # every admitted chunk is measured; only project a's admissions prime
    assert server.tokenized == [chunk_text("a1"), chunk_text("b1"), chunk_text("a2")]
    first, second = server.primes()
    assert len(server.bodies) == 2
    assert names(first) == ["one.py"]
    assert names(second) == ["one.py", "pkg/two.py"]
    assert [extra["text"] for extra in second["input_extra"]] == [
        chunk_text("a1"),
        chunk_text("a2"),
    ]
    for body in (first, second):
        assert body["n_predict"] == 0
        assert body["prompt"] == body["input_prefix"] == body["input_suffix"] == ""
        assert body["samplers"] == []
        assert body["cache_prompt"] is True
    assert engine.counters.primes == 2
    assert engine.counters.user_requests == 0
    assert len(engine.ring.chunks()) == 3


def test_priming_serves_the_project_of_the_buffer_entered_last(
    projects: tuple[Path, Path],
) -> None:
    a, b = projects

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        send(engine, "chunk", chunk_event(in_project(b, "two.py"), "b1"))
        send(engine, "enter", {"filename": in_project(b, "x.py"), "cwd": "/"})
        await engine.priming.admit_and_prime()  # a's chunk: no priming for b
        assert server.bodies == []
        await engine.priming.admit_and_prime()
        await finish(engine)
        return server

    (prime,) = asyncio.run(main()).primes()
    assert names(prime) == ["two.py"]


def test_nothing_is_primed_before_a_buffer_is_entered(projects: tuple[Path, Path]) -> None:
    a, _ = projects

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        await engine.priming.admit_and_prime()
        await finish(engine)
        return server

    server = asyncio.run(main())
    assert server.bodies == []
    assert server.tokenized == [chunk_text("a1")]


def test_the_request_after_priming_starts_with_the_same_extra_context(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects
    file_a = in_project(a, "main.py")

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": file_a, "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        send(engine, "chunk", chunk_event(in_project(a, "two.py"), "a2"))
        await engine.priming.admit_and_prime()
        await engine.priming.admit_and_prime()
        send(engine, "keystroke", event("x = ", filename=file_a))
        await finish(engine)
        return server

    server = asyncio.run(main())
    prime = server.primes()[-1]
    (request,) = [body for body in server.bodies if body["n_predict"]]
    assert request["input_extra"] == prime["input_extra"]
    assert names(request) == ["one.py", "two.py"]


def test_priming_after_typing_sends_what_a_request_from_there_sends(
    projects: tuple[Path, Path],
) -> None:
    # The chunk the local context covers is left out of requests; priming it
    # anyway would put it back in the middle of the server's cache on every
    # admission. The far suffix comes along, so the next request reuses it too.
    a, _ = projects
    file_a = in_project(a, "main.py")
    below = tuple(f"line_{i} = {i}" for i in range(12))

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": file_a, "cwd": "/"})
        admit_all(engine, [(in_project(a, "one.py"), "a1"), (in_project(a, "two.py"), "a2")])
        typing = event("x = ", above=tuple(chunk_lines("a1")), below=below, filename=file_a)
        send(engine, "keystroke", typing)
        await settle()
        send(engine, "chunk", chunk_event(in_project(a, "three.py"), "a3"))
        await engine.priming.admit_and_prime()
        send(engine, "keystroke", {**typing, "tick": 2, "before": "x = y", "col": 5})
        await finish(engine)
        return server

    server = asyncio.run(main())
    first, last = [body for body in server.bodies if body["n_predict"]]
    (prime,) = server.primes()
    assert names(first) == ["two.py", "main.py"]  # one.py is what the cursor sees
    assert names(prime) == names(last) == ["two.py", "three.py", "main.py"]
    assert prime["input_extra"] == last["input_extra"]
    assert prime["input_extra"][-1]["text"] == "".join(f"{x}\n" for x in below[3:])


def test_no_priming_while_disabled(projects: tuple[Path, Path]) -> None:
    a, _ = projects

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        engine.set_enabled(False)
        await engine.priming.admit_and_prime()
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.bodies == []
    assert len(engine.ring.chunks()) == 1  # still gathered: it serves once enabled


def test_no_priming_until_the_context_size_is_known(projects: tuple[Path, Path]) -> None:
    a, _ = projects

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        await engine.priming.admit_and_prime()
        await finish(engine)
        return server

    assert asyncio.run(main()).bodies == []


def test_priming_goes_ahead_when_tokenize_is_unavailable(projects: tuple[Path, Path]) -> None:
    a, _ = projects

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        server.tokens_for = None
        engine, editor = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        await engine.priming.admit_and_prime()
        await finish(engine)
        assert editor.messages == []
        return engine, server

    engine, server = asyncio.run(main())
    assert len(server.primes()) == 1
    assert engine.builder.token_scale == 1.0


def test_the_ring_admits_only_while_the_user_is_idle(projects: tuple[Path, Path]) -> None:
    a, _ = projects
    file_a = in_project(a, "m.py")

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        clock = Clock()
        engine, _ = make_engine(server, make_config(ring_update_ms=10), clock)
        engine.n_ctx = 8192
        engine.start()
        send(engine, "keystroke", event("x = ", filename=file_a))  # in insert mode, typing
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        for _ in range(5):
            await asyncio.sleep(0.012)  # ring ticks pass while the user types
        assert engine.ring.queued == 1
        clock.now = IDLE_AFTER_S + 0.1
        for _ in range(500):
            if server.primes():
                break
            await asyncio.sleep(0.002)
        await engine.close()
        await settle()
        return engine, server

    engine, server = asyncio.run(main())
    assert engine.ring.queued == 0
    assert [names(body) for body in server.primes()] == [["one.py"]]


# -- the extra-context budget ---------------------------------------------------------------------


def sent_chunks(engine: Engine) -> int:
    context = build_local_context(snapshot_of(event()))
    return len(engine.builder.extra(engine.projects.current, context))


def expected_budget(
    n_ctx: int, n_batch: int, n_predict: int, scale: float = 1.0, *, far_suffix: bool = True
) -> int:
    # The far suffix (layout.py) has n_batch/4 tokens set aside for it.
    reserved = n_batch // 4 if far_suffix else 0
    left = n_ctx - n_batch - 2 * n_predict - reserved
    return int(left * BUDGET_SLACK / scale) - BUDGET_FRAMING


def budget_engine(
    n_batch: int, n_predict: int, n_chunks: int = 8, **options: Any
) -> tuple[Engine, int]:
    """An engine (no loop needed) whose ring holds ``n_chunks`` equal chunks; and their cost."""
    config = make_config(n_batch=n_batch, n_predict=n_predict, **options)
    engine, _ = make_engine(FakeServer(), config)
    engine.projects.current = "/nowhere"
    admit_all(engine, [(f"/nowhere/c{i}.py", f"c{i}") for i in range(n_chunks)])
    costs = {chunk.tokens for chunk in engine.ring.chunks()}
    assert len(costs) == 1
    return engine, costs.pop()


@pytest.mark.parametrize(("n_batch", "n_predict"), [(16, 8), (64, 1), (512, 128), (1024, 100)])
def test_the_budget_is_the_context_left_after_the_batch_and_twice_n_predict(
    n_batch: int, n_predict: int
) -> None:
    engine, each = budget_engine(n_batch, n_predict)
    base = n_batch + 2 * n_predict
    for n_ctx in range(base, base + 12 * each):
        engine.n_ctx = n_ctx
        budget = expected_budget(n_ctx, n_batch, n_predict)
        assert sent_chunks(engine) == min(8, max(0, budget) // each), n_ctx


def test_nothing_is_set_aside_for_a_far_suffix_when_the_suffix_is_not_split() -> None:
    engine, each = budget_engine(512, 128, n_suffix_fim=64)
    for n_ctx in range(768, 768 + 12 * each):
        engine.n_ctx = n_ctx
        budget = expected_budget(n_ctx, 512, 128, far_suffix=False)
        assert sent_chunks(engine) == min(8, max(0, budget) // each), n_ctx


def test_the_far_suffix_is_sent_before_the_budget_is_known() -> None:
    below = tuple(f"line_{i} = {i}" for i in range(12))

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        assert engine.n_ctx == 0
        send(engine, "keystroke", event("x = ", below=below))
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert body["input_suffix"] == "\n" + "".join(f"{x}\n" for x in below[:3])
    assert body["input_extra"] == [
        {"filename": "m.py", "text": "".join(f"{x}\n" for x in below[3:])}
    ]


def test_n_predict_counts_twice_and_n_batch_once() -> None:
    # Formula-free: one more token of n_predict costs what two of n_ctx do.
    results: dict[tuple[int, int, int], int] = {}
    for n_batch, n_predict in [(16, 8), (17, 8), (16, 9)]:
        engine, _ = budget_engine(n_batch, n_predict)
        for n_ctx in range(40, 600):
            engine.n_ctx = n_ctx
            results[(n_ctx, n_batch, n_predict)] = sent_chunks(engine)
    for n_ctx in range(42, 600):
        assert results[(n_ctx, 17, 8)] == results[(n_ctx - 1, 16, 8)]
        assert results[(n_ctx, 16, 9)] == results[(n_ctx - 2, 16, 8)]
    assert len(set(results.values())) > 5


def test_the_budget_is_used_in_the_request_body() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(n_batch=16, n_predict=8))
        admit_all(engine, [(f"/nowhere/c{i}.py", f"c{i}") for i in range(6)])
        each = engine.ring.chunks()[0].tokens
        # room for exactly three chunks
        engine.n_ctx = next(n for n in range(32, 10_000) if expected_budget(n, 16, 8) >= 3 * each)
        send(engine, "keystroke", event())
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert names(body) == ["c3.py", "c4.py", "c5.py"]  # the newest, oldest first


def test_no_extra_context_while_the_context_size_is_unknown() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server)
        admit_all(engine, [("/nowhere/c0.py", "c0")])
        send(engine, "keystroke", event())
        await settle()  # the reply makes the engine ask /props
        server.n_ctx = 4096
        send(engine, "keystroke", event("y = 1", tick=2))
        await settle()
        send(engine, "keystroke", event("y = 12", tick=3))
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert [names(body) for body in server.bodies] == [[], [], ["c0.py"]]
    assert engine.n_ctx == 4096


def test_the_budget_scales_by_the_measured_server_tokens_per_local_token(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects
    n_batch, n_predict = 16, 8

    async def main() -> tuple[Engine, list[float], list[int]]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(n_batch=n_batch, n_predict=n_predict))
        engine.n_ctx = 600
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        # The server's model makes twice as many tokens of each chunk as we count
        # (a chunk costs its text plus its "cN.py\n" header plus one).
        server.tokens_for = lambda text: 2 * (len(text) + len("c0.py\n") + 1)
        scales: list[float] = []
        sent: list[int] = []
        for i in range(8):
            send(engine, "chunk", chunk_event(in_project(a, f"c{i}.py"), f"c{i}"))
            await engine.priming.admit_and_prime()
            scales.append(engine.builder.token_scale)
            sent.append(len(server.primes()[-1]["input_extra"]))
        await finish(engine)
        return engine, scales, sent

    engine, scales, sent = asyncio.run(main())
    each = engine.ring.chunks()[0].tokens
    measured = [(i + 1) * each for i in range(8)]
    # Below 200 measured tokens the counts are trusted as they are.
    assert scales == [2.0 if m >= 200 else 1.0 for m in measured]
    assert 1.0 in scales
    assert 2.0 in scales
    for i, scale in enumerate(scales):
        budget = expected_budget(600, n_batch, n_predict, scale)
        assert sent[i] == min(i + 1, max(0, budget) // each), i


def test_the_token_scale_never_drops_below_a_quarter(projects: tuple[Path, Path]) -> None:
    a, _ = projects

    async def main() -> Engine:
        server = FakeServer()
        server.tokens_for = lambda text: 1
        engine, _ = make_engine(server)
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        for i in range(6):
            send(engine, "chunk", chunk_event(in_project(a, f"c{i}.py"), f"c{i}"))
            await engine.priming.admit_and_prime()
        await finish(engine)
        return engine

    assert asyncio.run(main()).builder.token_scale == 0.25


def test_chunks_the_local_context_holds_are_not_sent() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        admit_all(engine, [(f"/nowhere/c{i}.py", f"c{i}") for i in range(3)])
        send(engine, "keystroke", event("x = ", above=("def f():", *chunk_lines("c1"))))
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert names(body) == ["c0.py", "c2.py"]


def test_only_the_current_projects_chunks_are_sent(projects: tuple[Path, Path]) -> None:
    a, b = projects

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        admit_all(
            engine,
            [
                (in_project(a, "a0.py"), "a0"),
                (in_project(b, "b0.py"), "b0"),
                (in_project(a, "sub/a1.py"), "a1"),
            ],
        )
        send(engine, "keystroke", event("x = ", filename=in_project(a, "sub/m.py")))
        await settle()
        send(engine, "keystroke", event("y = ", tick=2, filename=in_project(b, "m.py")))
        await finish(engine)
        return server

    first, second = asyncio.run(main()).bodies
    assert names(first) == ["a0.py", "sub/a1.py"]
    assert names(second) == ["b0.py"]


# -- the benchmark's naive baseline (tests/bench/naive.py) -----------------------------------------


def test_naive_shaping_admits_at_once_and_sends_newest_first() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, shaping=NaiveShaping())
        engine.n_ctx = 8192
        for i in range(3):
            send(engine, "chunk", chunk_event(f"/nowhere/c{i}.py", f"c{i}"))
            assert engine.ring.queued == 0
            assert len(engine.ring.chunks()) == i + 1
        await engine.priming.admit_and_prime()  # nothing queued: no priming either
        send(engine, "keystroke", event())
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert [names(body) for body in server.bodies] == [["c2.py", "c1.py", "c0.py"]]
    assert engine.counters.primes == 0
    assert [c.filename for c in engine.ring.chunks()] == ["c0.py", "c1.py", "c2.py"]


def test_fifo_mode_queues_and_sends_oldest_first() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        for i in range(3):
            send(engine, "chunk", chunk_event(f"/nowhere/c{i}.py", f"c{i}"))
        assert engine.ring.queued == 3
        assert engine.ring.chunks() == []
        while engine.ring.admit_one() is not None:
            pass
        send(engine, "keystroke", event())
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert names(body) == ["c0.py", "c1.py", "c2.py"]


# -- gathering and privacy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "filetype"),
    [
        ("/nowhere/.env", "sh"),
        ("/nowhere/config/prod.env", ""),
        ("/home/u/.ssh/config", "sshconfig"),
        ("/home/u/.aws/credentials", ""),
        ("/nowhere/certs/server.key", ""),
        ("/nowhere/secret.txt", "secretft"),
    ],
)
def test_chunks_of_excluded_files_never_reach_the_ring(filename: str, filetype: str) -> None:
    engine, _ = make_engine(FakeServer(), make_config(disabled_filetypes=("secretft",)))
    send(engine, "chunk", chunk_event(filename, "s0", filetype=filetype))
    assert engine.ring.queued == 0
    assert engine.ring.chunks() == []
    assert engine.counters.chunks_offered == 0


def test_excluded_text_never_reaches_a_request(projects: tuple[Path, Path]) -> None:
    a, _ = projects
    secret = {
        "lines": ["API_KEY=hunter2", "DB_PASSWORD=swordfish", "TOKEN=abc123"],
        "filename": in_project(a, ".env"),
        "filetype": "sh",
        "cwd": "/",
    }

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True))
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        send(engine, "chunk", secret)
        send(engine, "chunk", secret)
        send(engine, "chunk", chunk_event(in_project(a, "ok.py"), "k0"))
        send(engine, "keystroke", event("x = ", filename=in_project(a, "m.py")))
        await settle()
        await engine.priming.admit_and_prime()
        await engine.priming.admit_and_prime()
        # typing in the secret file itself asks nothing, even by hand
        send(
            engine, "keystroke", event("PASS=", tick=2, manual=True, filename=in_project(a, ".env"))
        )
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    everything = json.dumps(server.bodies) + json.dumps(server.tokenized)
    for word in ("hunter2", "swordfish", "abc123", "PASS=", ".env"):
        assert word not in everything
    assert [c.filename for c in engine.ring.chunks()] == ["ok.py"]
    assert len(server.primes()) == 1


def test_a_ring_of_zero_chunks_gathers_nothing_and_reports_no_ring() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(ring_n_chunks=0))
        engine.n_ctx = 8192
        send(engine, "chunk", chunk_event("/nowhere/c0.py", "c0"))
        await engine.priming.admit_and_prime()
        send(engine, "keystroke", event())
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert engine.ring.queued == 0
    assert engine.counters.chunks_offered == 0
    assert [names(body) for body in server.bodies] == [[]]
    assert "ring" not in editor.shown[0].info


def test_the_info_text_reports_the_ring_of_the_current_project(
    projects: tuple[Path, Path],
) -> None:
    a, b = projects

    async def main() -> FakeEditor:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(ring_n_chunks=4))
        admit_all(engine, [(in_project(a, "a0.py"), "a0"), (in_project(b, "b0.py"), "b0")])
        send(engine, "chunk", chunk_event(in_project(a, "a1.py"), "a1"))
        send(engine, "keystroke", event(filename=in_project(a, "m.py")))
        await finish(engine)
        return editor

    (plan,) = asyncio.run(main()).shown
    assert plan.info.endswith("ring 1/4, queued 1, evicted 0, extra 0 tok")
