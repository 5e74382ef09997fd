"""The ring's budget from measured timings: extra context only as far as it is cheap.

The extra context from the user's files is what makes suggestions fit the
project, so by default it gets all the server's context leaves. But it stays
in the KV cache, and what each request computes attends to all of it: on some
servers (llama.cpp's CPU flash attention, for one) every computed or
generated token of a keystroke request costs about a microsecond per cached
token, so thousands of tokens of extra context add hundreds of milliseconds to
every suggestion. On others (``-fa off``, GPUs) the cost hardly grows with it.

So the cost is measured: each keystroke request's server time per token of
work, against the KV cache's length. A server whose requests already end
within a typist's gap between keys keeps the whole budget. Otherwise, if no
spread of lengths was seen yet, the ring is probed once at the floor; from the
two lengths comes the cost of one cached token per request, and the ring may
hold what adds at most half a key gap to a request, or half of what the
request costs without it if that is more (never below the floor).

The cap changes rarely and in whole steps, with a margin before it rises, as
each change makes the server recompute the extra context. A lower cap applies
at once: it drops the oldest chunks, which the server's cache shifts past. A
higher one puts chunks back in front of everything the cache holds, so the
request that first sends them recomputes the whole prompt: seconds on a CPU-only
server, cut by the client's timeout, with no suggestion meanwhile. So requests
keep the lower cap until a priming computes the higher one while the user is
idle (priming.py).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from .config import Config
from .protocol import Timings

# A typist's gap between keys: a request that ends sooner is never overtaken.
KEY_GAP_MS = 100
# What the extra context may add to a request: half a key gap (the request's
# own work needs the rest), or half what the request costs without it on a
# server slower than that.
ALLOWANCE_MS = KEY_GAP_MS / 2
CONTEXT_SHARE = 0.5
# The cap moves in steps of this many server tokens, and never below one step:
# a chunk or two of the user's files is worth its cost.
STEP = 1024
FLOOR = STEP
# Replies measured at a cap before it may change again.
SETTLE = 8
# Requests computing more are not keystroke requests (a cold or shifted prompt).
MAX_KEYSTROKE_PROMPT = 256
# A request doing less work tells little about the per-token cost.
MIN_WORK = 8
# Lengths closer than this are one length for the fit.
MIN_SPREAD = STEP
# The cap rises only when the allowance holds this much beyond the next step.
RAISE_MARGIN = 1.25
_BINS_KEPT = 8


@dataclass(frozen=True)
class Decision:
    """The ring's cap (None: the whole budget), and why."""

    cap: int | None
    why: str
    us_per_kv: float = 0.0  # measured: µs per cached token per token of work


class ContextCost:
    """Measures what cached tokens cost keystroke requests; caps the ring's budget."""

    def __init__(self) -> None:
        # Per KV length (in steps): recent (length, ms per token of work).
        self._bins: dict[int, deque[tuple[int, float]]] = {}
        self._work: deque[int] = deque(maxlen=16)
        self._request_ms: deque[float] = deque(maxlen=16)
        self._since_change = 0
        self._probed = False
        self._probing = False  # the cap is the probe's: the first fit sets it outright
        self.decision = Decision(None, "not measured yet")
        self._applied: int | None = None  # the cap requests use (a rise waits, see above)
        self.changes = 0  # of the cap in use: each one changes the extra context sent

    def observe(self, timings: Timings) -> None:
        """One keystroke request's timings."""
        work = timings.prompt_n + timings.predicted_n
        if work < MIN_WORK or timings.prompt_n > MAX_KEYSTROKE_PROMPT:
            return
        ms = timings.prompt_ms + timings.predicted_ms
        length = timings.cache_n + timings.prompt_n
        samples = self._bins.setdefault(length // STEP, deque(maxlen=5))
        samples.append((length, ms / work))
        if len(self._bins) > _BINS_KEPT:
            del self._bins[min(self._bins, key=lambda b: len(self._bins[b]))]
        self._work.append(work)
        self._request_ms.append(ms)
        self._since_change += 1

    def cap(self, config: Config, *, rise: bool = True) -> int | None:
        """The most server tokens the ring may hold in the next body (None: no cap).

        ``rise``: a decided higher cap applies to this body; without it the
        body keeps the cap in use (a lower one applies at once all the same).
        """
        if config.ring_budget_cap > 0:
            return config.ring_budget_cap
        if config.ring_budget_cap == 0 or not config.latency_target_ms:
            return None
        if self._since_change >= SETTLE:
            self._decide()
        decided = self.decision.cap
        if (rise or not _rises(self._applied, decided)) and decided != self._applied:
            self._applied = decided
            self.changes += 1
        return self._applied

    def rise_pending(self, config: Config) -> bool:
        """True if a higher cap is decided but not in use yet."""
        if config.ring_budget_cap >= 0 or not config.latency_target_ms:
            return False
        self.cap(config, rise=False)
        return _rises(self._applied, self.decision.cap)

    def _decide(self) -> None:
        """Re-decide from the measurements (called once enough replies came at the cap)."""
        current = self.decision.cap
        if statistics.median(self._request_ms) <= KEY_GAP_MS and current is None:
            self._set(Decision(None, "requests end within a key gap"))
            return
        fit = self._fit()
        if fit is None:
            if not self._probed:
                self._probed = self._probing = True
                self._set(Decision(FLOOR, "probing what cached tokens cost"))
            return
        slope, intercept = fit
        work = statistics.median(self._work)
        allowance = max(ALLOWANCE_MS, CONTEXT_SHARE * intercept * work)
        per_token = slope * work  # ms per cached token per request
        room = allowance / per_token if per_token > 0 else float("inf")
        target = None if room >= self._longest() else max(FLOOR, int(room // STEP) * STEP)
        lowers = target is not None and (current is None or target < current)
        rises = current is not None and room >= (current + STEP) * RAISE_MARGIN
        if self._probing or lowers or rises or target == current:
            self._probing = False
            why = "cached tokens are cheap" if target is None else "cached tokens cost time"
            self._set(Decision(target, why, slope * 1000))

    def _set(self, decision: Decision) -> None:
        if decision.cap != self.decision.cap:
            self._since_change = 0
        self.decision = decision

    def _longest(self) -> int:
        """The longest KV cache measured (the end of its step)."""
        return (max(self._bins) + 1) * STEP

    def _fit(self) -> tuple[float, float] | None:
        """ms per token of work: per cached token and with none (None: no spread of lengths)."""
        points = [
            (statistics.median(x for x, _ in s), statistics.median(y for _, y in s))
            for s in self._bins.values()
            if len(s) >= 2
        ]
        if len(points) < 2:
            return None
        xs = [x for x, _ in points]
        if max(xs) - min(xs) < MIN_SPREAD:
            return None
        mean_x = statistics.fmean(xs)
        mean_y = statistics.fmean(y for _, y in points)
        num = sum((x - mean_x) * (y - mean_y) for x, y in points)
        den = sum((x - mean_x) ** 2 for x in xs)
        slope = max(0.0, num / den)
        return slope, max(0.0, mean_y - slope * mean_x)

    def describe(self, config: Config) -> str:
        """The :LlamaStatus line's text: the cap and why."""
        if config.ring_budget_cap > 0:
            return f"at most {config.ring_budget_cap} tokens (set)"
        if config.ring_budget_cap == 0 or not config.latency_target_ms:
            return "whole budget (auto off)"
        decision = self.decision
        cost = f", {decision.us_per_kv:.2f} µs per cached token" if decision.us_per_kv else ""
        text = f"{_size(decision.cap)} (auto: {decision.why}{cost})"
        if self.rise_pending(config):
            text = f"{_size(self._applied)} until idle, then {text}"
        return text


def _rises(applied: int | None, decided: int | None) -> bool:
    """True if ``decided`` lets the ring hold more than ``applied``."""
    return applied is not None and (decided is None or decided > applied)


def _size(cap: int | None) -> str:
    return "whole budget" if cap is None else f"at most {cap} tokens"
