"""Sending one /infill request: counting it, logging it, timing it, reporting its problems."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .client import InfillClient, OnText
from .counters import Counters
from .debuglog import DebugLog
from .messages import RequestDone, RequestStarted
from .pacing import Pacer
from .problems import ProblemReporter, ServerProblem
from .protocol import Completion
from .render import Editor


class Sender:
    """Sends request bodies; tells the user of server trouble once, and of its end."""

    def __init__(
        self,
        client: InfillClient,
        counters: Counters,
        editor: Editor,
        log: DebugLog,
        clock: Callable[[], float],
        on_success: Callable[[], None],
    ) -> None:
        self._client = client
        self._counters = counters
        self._editor = editor
        self._log = log
        self._clock = clock
        self._on_success = on_success
        self._reporter = ProblemReporter()
        # The full text of the last problem, for :LlamaStatus (messages shown
        # while typing are cut to the command line's width).
        self.last_problem = ""
        self._request_id = 0
        # The server's speed, measured from every reply (pacing.py).
        self.pacer = Pacer()

    def may_request(self) -> bool:
        """False while backing off from a server that keeps failing."""
        return self._reporter.may_request(self._clock())

    async def send(
        self, body: dict[str, Any], *, quiet: bool = False, on_text: OnText | None = None
    ) -> Completion | None:
        """The server's completion, or None after a problem (reported unless ``quiet``).

        ``on_text`` is told the answer so far while a streamed reply comes in.

        A request the user waits for (not ``quiet``) is announced to the editor
        when sent and when ended, whatever the end: that drives the statusline.
        """
        self._counters.requests += 1
        self._log.write(
            "request",
            background=quiet,
            n_predict=body["n_predict"],
            extra_chunks=len(body["input_extra"]),
            prompt=body["prompt"],
        )
        request_id = 0 if quiet else self._announce_start()
        started = self._clock()
        status, error = "error", ""  # unless set below: an unexpected exception is one too
        try:
            completion = await self._client.infill(body, on_text)
            status = "ok"
        except asyncio.CancelledError:
            status = "cancelled"
            self._log.write("cancelled")
            self._counters.cancelled += 1
            raise
        except ServerProblem as problem:
            self._failed(problem, quiet=quiet)
            error = self._client.wire.describe(problem, self._client.endpoint)
            return None
        finally:
            if request_id:
                ms = round((self._clock() - started) * 1000)
                self._editor.request_done(RequestDone(request_id, status, ms, error))
        if self._reporter.on_success():
            name = self._client.wire.server_name
            self._editor.notify(f"llama.nvim: {name} answers again", error=False)
        self._on_success()
        self._received(completion)
        wall_ms = (self._clock() - started) * 1000
        self.pacer.observe(completion.timings, wall_ms, asked=body["n_predict"])
        return completion

    def _announce_start(self) -> int:
        self._request_id += 1
        self._editor.request_started(RequestStarted(self._request_id))
        return self._request_id

    def _failed(self, problem: ServerProblem, *, quiet: bool) -> None:
        self._log.write("problem", kind=problem.kind.value, detail=problem.detail)
        self._counters.failed += 1
        if quiet:
            return  # background work: the user's own requests report problems
        self.last_problem = self._client.wire.describe(problem, self._client.endpoint)
        if self._reporter.on_problem(problem, self._clock()):
            self._editor.notify("llama.nvim: " + self.last_problem, error=True)

    def _received(self, completion: Completion) -> None:
        t = completion.timings
        self._log.write(
            "reply",
            content=completion.content,
            prompt_n=t.prompt_n,
            cache_n=t.cache_n,
            predicted_n=t.predicted_n,
            ms=round(t.prompt_ms + t.predicted_ms, 1),
        )
        self._counters.prompt_n += t.prompt_n
        self._counters.cache_n += t.cache_n
        self._counters.sent_tokens += completion.tokens_evaluated
