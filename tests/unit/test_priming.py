"""The ring's idle-time admission and priming, and gathering chunks, driven through the engine.

The fixtures (fake server, editor, clock) are tests/unit/engine_fixture.py's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from llama_nvim.context_cost import FLOOR, SETTLE
from llama_nvim.engine import Engine
from llama_nvim.priming import IDLE_AFTER_S
from llama_nvim.protocol import Timings
from tests.unit.engine_fixture import (
    Clock,
    FakeEditor,
    FakeServer,
    admit_all,
    chunk_event,
    chunk_lines,
    chunk_text,
    event,
    finish,
    held,
    in_project,
    make_config,
    make_engine,
    names,
    ok,
    reply_to,
    send,
    settle,
    turns,
)

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
    assert engine.ring.state().chunks == 3


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


def test_priming_computes_where_the_user_last_typed(
    projects: tuple[Path, Path],
) -> None:
    # Going back to type where they were, the user's next request then shares
    # the primed prompt up to the line it changed, not only the extra context.
    a, _ = projects
    file_a = in_project(a, "main.py")
    above = ("import os", "", "def f():")

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": file_a, "cwd": "/"})
        typing = event("    x = ", above=above, below=("    return x",), filename=file_a)
        send(engine, "keystroke", typing)
        await settle()
        send(engine, "leave")
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        send(engine, "chunk", chunk_event(in_project(a, "two.py"), "a2"))
        await engine.priming.admit_and_prime()
        await engine.priming.admit_and_prime()
        send(engine, "keystroke", {**typing, "tick": 2, "before": "    x = o", "col": 9})
        await finish(engine)
        return server

    server = asyncio.run(main())
    first, second = server.primes()
    before, back = [body for body in server.bodies if body["n_predict"]]
    assert names(before) == []  # the chunks came after it
    # Each priming, not only the run's last: the user may be back before it ends.
    for prime in (first, second):
        for key in ("input_prefix", "input_suffix", "prompt"):
            assert prime[key] == before[key], key
    assert back["input_prefix"] == second["input_prefix"]
    assert back["input_extra"] == second["input_extra"]
    assert back["prompt"] == "    x = o"


def test_in_another_file_priming_leaves_out_where_the_user_last_typed(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects
    file_a, file_b = in_project(a, "main.py"), in_project(a, "other.py")

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": file_a, "cwd": "/"})
        send(engine, "keystroke", event("x = ", filename=file_a))
        await settle()
        send(engine, "leave")
        send(engine, "enter", {"filename": file_b, "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        await engine.priming.admit_and_prime()
        await finish(engine)
        return server

    (prime,) = asyncio.run(main()).primes()
    assert names(prime) == ["one.py"]
    assert prime["prompt"] == prime["input_prefix"] == prime["input_suffix"] == ""


def slow_priming_engine(project: Path, seconds: float) -> tuple[Engine, FakeServer, Clock]:
    """An engine in ``project``'s main.py, a chunk queued, a server taking ``seconds`` to prime."""
    server = FakeServer()
    clock = Clock()
    engine, _ = make_engine(server, clock=clock)
    engine.n_ctx = 8192
    send(engine, "enter", {"filename": in_project(project, "main.py"), "cwd": "/"})
    send(engine, "chunk", chunk_event(in_project(project, "one.py"), "a1"))

    def slow(body: dict[str, object]) -> httpx.Response:
        if body["n_predict"] == 0:
            clock.now += seconds
        return ok(reply_to(str(body["prompt"])))

    server.answer = slow
    return engine, server, clock


def test_out_of_insert_mode_the_user_is_idle_once_a_priming_would_be_done(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects

    async def main() -> list[bool]:
        engine, _, clock = slow_priming_engine(a, 2.0)
        priming = engine.priming
        seen = [priming.idle()]  # nothing typed yet, no priming timed
        await priming.admit_and_prime()
        clock.now = 10.0
        send(engine, "keystroke", event("x = ", filename=in_project(a, "main.py")))
        seen.append(priming.idle())  # typing
        clock.now = 11.0
        send(engine, "leave")
        clock.now = 12.9
        seen.append(priming.idle())  # out of insert mode less than a priming's time
        clock.now = 13.0
        seen.append(priming.idle())
        await finish(engine)
        return seen

    assert asyncio.run(main()) == [True, False, False, True]


def test_a_slow_priming_needs_a_pause_in_insert_mode_as_long_as_itself(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects

    async def main() -> list[bool]:
        engine, _, clock = slow_priming_engine(a, IDLE_AFTER_S + 2.0)
        priming = engine.priming
        await priming.admit_and_prime()
        clock.now = 100.0
        send(engine, "keystroke", event("x = ", filename=in_project(a, "main.py")))
        seen = []
        for pause in (IDLE_AFTER_S + 0.1, IDLE_AFTER_S + 1.9, IDLE_AFTER_S + 2.0):
            clock.now = 100.0 + pause
            seen.append(priming.idle())
        await finish(engine)
        return seen

    assert asyncio.run(main()) == [False, False, True]


def test_no_priming_while_disabled(projects: tuple[Path, Path]) -> None:
    a, _ = projects

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        send(engine, "enabled", {"enabled": False})
        await engine.priming.admit_and_prime()
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.bodies == []
    assert engine.ring.state().chunks == 1  # still gathered: it serves once enabled


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


def test_a_change_of_the_rings_cap_is_primed_while_the_user_is_idle(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects

    async def main() -> tuple[FakeServer, list[str]]:
        server = FakeServer()
        clock = Clock()
        engine, _ = make_engine(server, make_config(ring_update_ms=10), clock)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "main.py"), "cwd": "/"})
        for tag in ("a1", "a2"):
            send(engine, "chunk", chunk_event(in_project(a, f"{tag}.py"), tag))
            await engine.priming.admit_and_prime()
        engine.start()
        for _ in range(5):
            await asyncio.sleep(0.012)  # idle ticks: nothing queued, nothing changed
        assert len(server.primes()) == 2
        # Keystroke requests slow because of the cache: the cost probes the ring.
        slow = Timings(prompt_n=70, prompt_ms=490.0, predicted_n=30, predicted_ms=210.0)
        for _ in range(SETTLE):
            engine.sender.pacer.observe(dataclasses.replace(slow, cache_n=7000), 800, asked=9)
        assert engine.builder.context_cost.cap(engine.config) == FLOOR
        for _ in range(500):
            if len(server.primes()) == 3:
                break
            await asyncio.sleep(0.002)
        for _ in range(5):
            await asyncio.sleep(0.012)  # primed once per change
        await engine.close()
        await settle()
        now = [c.filename for c in engine.builder.extra(engine.projects.current, None)]
        return server, now

    server, now = asyncio.run(main())
    assert len(server.primes()) == 3
    assert names(server.primes()[-1]) == now


def test_a_higher_cap_is_primed_once_the_user_is_idle_as_long_as_computing_it_takes(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects
    tags = ["".join(f"w{j}q{i}_" for j in range(8)) for i in range(8)]

    async def main() -> tuple[list[bool], list[int], float]:
        server, clock = FakeServer(), Clock()
        engine, _ = make_engine(server, clock=clock)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "main.py"), "cwd": "/"})
        ms_per_token = 2.0

        def priming_at_2_ms_per_token(body: dict[str, object]) -> httpx.Response:
            if body["n_predict"] == 0:
                clock.now += 1.0
                fields = {"timings/prompt_n": 500, "timings/prompt_ms": 500 * ms_per_token}
                return ok("", **fields)
            return ok(reply_to(str(body["prompt"])))

        server.answer = priming_at_2_ms_per_token
        for tag in tags:
            send(engine, "chunk", chunk_event(in_project(a, f"{tag}.py"), tag))
            await engine.priming.admit_and_prime()
        builder, priming = engine.builder, engine.priming
        whole = len(builder.extra(engine.projects.current, None))
        # A slow server: probed at the floor; as slow there, so the whole budget
        # is decided, and waits for a priming.
        slow = Timings(prompt_n=70, prompt_ms=350.0, predicted_n=30, predicted_ms=150.0)
        for cache_n in (7000, FLOOR + 500):
            for _ in range(SETTLE):
                timings = dataclasses.replace(slow, cache_n=cache_n)
                engine.sender.pacer.observe(timings, 600, asked=9)
            builder.extra(engine.projects.current, None)
        tokens = builder.rise_tokens(engine.projects.current)
        needed_s = tokens * ms_per_token / 1000
        clock.now = 100.0
        send(engine, "keystroke", event("x = ", filename=in_project(a, "main.py")))
        send(engine, "leave")
        seen = []
        for idle_s in (priming.expected_s, needed_s - 0.01, needed_s):
            clock.now = 100.0 + idle_s
            seen += [priming.idle(), priming.rise_due()]
        sent = [len(builder.extra(engine.projects.current, None))]
        await priming.prime()
        sent += [len(names(server.primes()[-1])), len(builder.extra(engine.projects.current, None))]
        await finish(engine)
        return seen, [whole, *sent], needed_s

    seen, sent, needed_s = asyncio.run(main())
    assert seen == [True, False, True, False, True, True]
    whole, floor, primed, after = sent
    assert floor < whole  # requests kept the floor until the priming
    assert primed == after == whole
    assert needed_s > 3.0  # longer than a priming of the floor's chunks (1 s)


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
    assert engine.ring.state().chunks == 0
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
    assert engine.ring.state().chunks == 1
    assert [c.filename for c in held(engine.ring, str(a))] == ["ok.py"]
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


def test_a_keystroke_while_priming_runs_waits_for_it_instead_of_cancelling_it(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects

    async def main() -> tuple[FakeEditor, FakeServer, list[dict[str, object]]]:
        server = FakeServer()
        gate = server.hold_when(lambda body: body["n_predict"] == 0)  # priming's reply waits
        engine, editor = make_engine(server)
        engine.n_ctx = 8192
        send(engine, "enter", {"filename": in_project(a, "main.py"), "cwd": "/"})
        send(engine, "chunk", chunk_event(in_project(a, "one.py"), "a1"))
        engine.scheduler.run(engine.priming.admit_and_prime(), background=True)
        await server.next_request()
        send(engine, "keystroke", event("x = ", filename=in_project(a, "main.py"), cwd="/"))
        await turns(50)  # ample for a request without debounce to reach the server
        while_priming = list(server.bodies)
        gate.set()
        await finish(engine)
        return editor, server, while_priming

    editor, server, while_priming = asyncio.run(main())
    assert [body["n_predict"] for body in while_priming] == [0], "nothing sent beside priming"
    assert server.cancelled == 0
    assert server.peak == 1
    assert server.prompts() == ["x = "]
    assert len(editor.shown) == 1
