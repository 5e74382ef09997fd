"""scheduler.Scheduler: sequence numbers, supersede, cancel-once, waiting for closes.

No server and no clock: the tasks are plain coroutines, and the tests move the
event loop on by turns (``asyncio.sleep(0)``), never by time.
"""

from __future__ import annotations

import asyncio

import pytest

from llama_nvim import scheduler as scheduler_module
from llama_nvim.scheduler import Scheduler
from tests.unit.engine_fixture import turns


class Request:
    """A request that, once cancelled, takes ``close_turns`` loop turns to close."""

    def __init__(self, close_turns: int = 3) -> None:
        self.close_turns = close_turns
        self.started = asyncio.Event()
        self.cancels = 0
        self.closed = False

    async def run(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()  # a reply that never comes
        except asyncio.CancelledError:
            self.cancels += 1
            for _ in range(self.close_turns):
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:  # a second cancel cuts the close short
                    self.cancels += 1
                    raise
            self.closed = True
            raise


def test_a_new_event_makes_every_earlier_reply_stale() -> None:
    scheduler = Scheduler()
    first = scheduler.supersede()
    assert scheduler.is_current(first)
    second = scheduler.supersede()
    assert second > first
    assert not scheduler.is_current(first)
    assert scheduler.is_current(second)


def test_superseding_cancels_the_running_task() -> None:
    async def main() -> tuple[Request, bool, bool]:
        scheduler = Scheduler()
        request = Request()
        task = scheduler.run(request.run())
        await request.started.wait()
        busy_before = scheduler.busy()
        scheduler.supersede()
        await asyncio.wait({task})
        return request, busy_before, scheduler.busy()

    request, busy_before, busy_after = asyncio.run(main())
    assert busy_before
    assert not busy_after
    assert request.cancels == 1
    assert request.closed


def test_a_keystroke_leaves_priming_running_and_its_request_waits_for_it() -> None:
    async def main() -> tuple[bool, bool, bool]:
        scheduler = Scheduler()
        reply = asyncio.Event()
        task = scheduler.run(reply.wait(), background=True)  # type: ignore[arg-type]
        await turns(1)
        scheduler.supersede(keep_priming=True)  # a keystroke
        request = asyncio.ensure_future(scheduler.quiet())  # its request, before sending
        await asyncio.sleep(0.05)
        waited = not request.done()
        reply.set()  # the priming's reply comes: the request goes
        await asyncio.wait_for(request, 5)
        return waited, task.cancelled(), scheduler.busy()

    waited, cancelled, busy = asyncio.run(main())
    assert waited, "the request was sent while priming still held the server"
    assert not cancelled
    assert not busy


def test_a_priming_that_takes_too_long_is_cut_for_the_users_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_module, "PRIMING_PATIENCE_S", 0.05)

    async def main() -> tuple[int, bool]:
        scheduler = Scheduler()
        priming = Request()
        scheduler.run(priming.run(), background=True)
        await priming.started.wait()
        scheduler.supersede(keep_priming=True)
        await asyncio.wait_for(scheduler.quiet(), 5)
        return priming.cancels, priming.closed

    cancels, closed = asyncio.run(main())
    assert cancels == 1
    assert closed


def test_turning_suggestions_off_cancels_priming_too() -> None:
    async def main() -> tuple[int, bool]:
        scheduler = Scheduler()
        priming = Request()
        task = scheduler.run(priming.run(), background=True)
        await priming.started.wait()
        scheduler.supersede()
        await asyncio.wait({task})
        return priming.cancels, scheduler.busy()

    cancels, busy = asyncio.run(main())
    assert cancels == 1
    assert not busy


def test_a_task_is_cancelled_once_so_its_connection_closes_cleanly() -> None:
    async def main() -> Request:
        scheduler = Scheduler()
        request = Request(close_turns=5)
        task = scheduler.run(request.run())
        await request.started.wait()
        scheduler.supersede()
        await turns(1)  # the task is closing now
        scheduler.cancel(task)  # e.g. a speculation settling, or another keystroke
        scheduler.supersede()
        await asyncio.wait({task})
        return request

    request = asyncio.run(main())
    assert request.cancels == 1
    assert request.closed


def test_quiet_waits_until_every_cancelled_request_has_closed() -> None:
    async def main() -> tuple[bool, bool]:
        scheduler = Scheduler()
        request = Request(close_turns=5)
        scheduler.run(request.run())
        await request.started.wait()
        scheduler.supersede()
        closed_at_once = request.closed
        await scheduler.quiet()
        return closed_at_once, request.closed

    closed_at_once, closed_after_quiet = asyncio.run(main())
    assert not closed_at_once
    assert closed_after_quiet


def test_quiet_returns_at_once_when_nothing_is_closing() -> None:
    async def main() -> None:
        scheduler = Scheduler()
        await asyncio.wait_for(scheduler.quiet(), 5)  # a bound, should it hang

    asyncio.run(main())


def test_a_closing_task_waiting_for_quiet_does_not_wait_for_itself() -> None:
    async def main() -> bool:
        scheduler = Scheduler()
        done = asyncio.Event()

        async def closing() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await scheduler.quiet()  # would deadlock if it waited for itself
                done.set()
                raise

        task = scheduler.run(closing())
        await turns(1)
        scheduler.supersede()
        await asyncio.wait({task}, timeout=5)
        return done.is_set()

    assert asyncio.run(main())


def test_cancelling_a_finished_task_or_none_does_nothing() -> None:
    async def main() -> bool:
        scheduler = Scheduler()

        async def quick() -> None:
            pass

        task = scheduler.run(quick())
        await task
        scheduler.cancel(task)
        scheduler.cancel(None)
        await asyncio.wait_for(scheduler.quiet(), 5)
        return task.cancelled()

    assert not asyncio.run(main())


def test_the_last_task_run_is_the_one_the_next_event_cancels() -> None:
    async def main() -> tuple[int, int]:
        scheduler = Scheduler()
        older, newer = Request(close_turns=0), Request(close_turns=0)
        old_task = scheduler.run(older.run())
        new_task = scheduler.run(newer.run())
        await asyncio.gather(older.started.wait(), newer.started.wait())
        assert scheduler.task is new_task
        scheduler.supersede()
        await asyncio.wait({new_task})
        cancels = (older.cancels, newer.cancels)
        old_task.cancel()  # clean-up
        await asyncio.wait({old_task})
        return cancels

    assert asyncio.run(main()) == (0, 1)


def test_a_keystroke_waits_behind_a_request_whose_answer_may_serve_it() -> None:
    async def main() -> None:
        scheduler = Scheduler()
        first = scheduler.supersede()
        request = Request()
        task = scheduler.run(request.run())
        await request.started.wait()
        scheduler.on_the_wire(lambda item: item.startswith("x = "))
        assert scheduler.wait_behind("y") is None, "an answer for 'x = ' cannot serve 'y'"
        second = scheduler.wait_behind("x = 1")
        third = scheduler.wait_behind("x = 12")
        assert second is not None
        assert third is not None
        assert first < second < third
        assert not scheduler.is_current(first), "the running request's own reply is stale"
        assert request.cancels == 0
        waiting = scheduler.off_the_wire()
        assert waiting is not None
        assert (waiting.seq, waiting.item) == (third, "x = 12"), "only the newest waits"
        assert scheduler.off_the_wire() is None
        task.cancel()
        await asyncio.wait({task})

    asyncio.run(main())


def test_nothing_waits_behind_a_request_not_on_the_wire_or_superseded() -> None:
    async def main() -> None:
        scheduler = Scheduler()
        assert scheduler.wait_behind("x") is None, "nothing runs"
        request = Request()
        task = scheduler.run(request.run())
        await request.started.wait()
        assert scheduler.wait_behind("x") is None, "debouncing, not sending yet"
        scheduler.on_the_wire(lambda item: True)
        assert scheduler.wait_behind("x") is not None
        scheduler.supersede()
        await asyncio.wait({task})
        assert request.cancels == 1
        assert scheduler.off_the_wire() is None, "superseding drops the waiting keystroke"

    asyncio.run(main())
