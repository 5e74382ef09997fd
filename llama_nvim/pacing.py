"""Pacing from measured timings: when to ask, and for how much, to meet a latency target.

Each reply's ``timings`` tell the server's speed: milliseconds per computed
prompt token, per generated token, and what the round trip adds. From them
comes the expected time of one request, and from that the pacing of the
requests the user waits for, so that a suggestion is on screen within
``latency_target_ms`` of a pause.

What a pause may have to wait for: at most one request is in flight
(scheduler.py), and the keystroke that paused waits for it. So the worst case
is the request in flight finishing, the debounce, then the request for the
newest text: two requests and a debounce. ``n_predict`` is cut until that fits
the target (never below a useful floor, never above the configured maximum),
and ``t_max_predict_ms`` gets what is left for generating.

The debounce: a request that ends before the next key costs nothing, so on a
fast server the configured debounce stays (ask at once). A request that
outlasts a typist's gap between keys is mostly overtaken by the next key and
only holds the server when the user pauses; on such a server the request
waits for a pause, longer the slower the server, at most half a request (as
long as a typical one takes: most answers stop well before ``n_predict``).

Before enough replies are measured, and with ``latency_target_ms = 0``, the
configured values are used. An option the user set in ``g:llama_config`` is
never changed. Medians of the recent replies keep one odd reply (a cold
prompt, a busy machine) from swinging the pacing.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from .config import Config
from .context_cost import ContextCost
from .protocol import Timings

# Replies kept for the estimates, and measured before the pacing is derived.
WINDOW = 16
MIN_SAMPLES = 3
# A rate measured over fewer tokens is mostly the server's per-batch overhead.
MIN_TOKENS = 4
# A typist's gap between keys: a request that ends sooner is never overtaken.
KEY_GAP_MS = 100
# The longest automatic debounce: longer, and the pause itself feels slow.
DEBOUNCE_CAP_MS = 300
# Below these a suggestion is too short to be worth showing.
N_PREDICT_FLOOR = 16
T_MAX_PREDICT_FLOOR_MS = 100

DEBOUNCE = "debounce_ms"
N_PREDICT = "n_predict"
T_MAX_PREDICT = "t_max_predict_ms"
# The options that fix each paced value when the user sets them.
_FIXED_BY = {
    DEBOUNCE: {"debounce_ms"},
    N_PREDICT: {"n_predict"},
    T_MAX_PREDICT: {"t_max_predict_ms", "t_max_predict_ms_first"},
}


@dataclass(frozen=True)
class Estimates:
    """The server's speed, as measured from recent replies."""

    samples: int  # replies measured since the start
    prompt_ms_per_token: float
    predicted_ms_per_token: float
    overhead_ms: float  # the round trip and all else outside the server's timings
    prompt_tokens: int  # prompt tokens a typical request has the server compute
    predicted_tokens: int  # tokens a typical answer has (most stop before n_predict)

    @property
    def base_ms(self) -> float:
        """A typical request's time before it generates anything."""
        return self.overhead_ms + self.prompt_tokens * self.prompt_ms_per_token

    def request_ms(self, n_predict: int) -> float:
        """A typical request's time if it generates ``n_predict`` tokens."""
        return self.base_ms + n_predict * self.predicted_ms_per_token


@dataclass(frozen=True)
class Pacing:
    """What the requests the user waits for use; ``auto`` names the derived values."""

    debounce_ms: int
    n_predict: int
    t_max_predict_ms: int
    auto: frozenset[str] = frozenset()
    request_ms: int = 0  # one request's time if it generates all n_predict (0: not measured)
    pause_ms: int = 0  # worst case after a pause: two requests and the debounce


def configured(config: Config) -> Pacing:
    """The pacing of the configuration as it stands."""
    return Pacing(config.debounce_ms, config.n_predict, config.t_max_predict_ms_first)


def derive(config: Config, estimates: Estimates | None) -> Pacing:
    """The pacing for a server of the speed ``estimates`` tell (configured if unknown)."""
    target = config.latency_target_ms
    if not target or estimates is None:
        return configured(config)
    auto = frozenset(name for name, keys in _FIXED_BY.items() if not keys & config.given)
    n = config.n_predict
    if N_PREDICT in auto:
        n = _fit(estimates, target / 2, config.n_predict)
    debounce = config.debounce_ms
    if DEBOUNCE in auto:
        typical = estimates.request_ms(min(n, estimates.predicted_tokens))
        debounce = _debounce(typical, config.debounce_ms)
    # Each of the two requests a pause may wait for gets half of what the debounce leaves.
    share = (target - debounce) / 2
    if N_PREDICT in auto:
        n = _fit(estimates, share, config.n_predict)
    t_max = config.t_max_predict_ms_first
    if T_MAX_PREDICT in auto:
        t_max = _clamp(share - estimates.base_ms, T_MAX_PREDICT_FLOOR_MS, t_max)
    request = estimates.request_ms(n)
    return Pacing(debounce, n, t_max, auto, round(request), round(2 * request + debounce))


def _clamp(value: float, floor: int, ceiling: int) -> int:
    """``value`` rounded, within floor..ceiling (the ceiling wins if they cross)."""
    return min(ceiling, max(floor, round(value)))


def _fit(estimates: Estimates, budget_ms: float, most: int) -> int:
    """The tokens a request may generate and still end within ``budget_ms``."""
    spare = budget_ms - estimates.base_ms
    tokens = math.floor(spare / max(estimates.predicted_ms_per_token, 1e-3))
    return _clamp(tokens, N_PREDICT_FLOOR, most)


def _debounce(request_ms: float, floor: int) -> int:
    """Wait for a pause on a server whose request outlasts a gap between keys."""
    return max(floor, round(min(request_ms - KEY_GAP_MS, request_ms / 2, DEBOUNCE_CAP_MS)))


class Pacer:
    """Measures the server from replies; derives the pacing of the next request."""

    def __init__(self) -> None:
        self.samples = 0
        self._prompt_n: deque[int] = deque(maxlen=WINDOW)
        self._predicted_n: deque[int] = deque(maxlen=WINDOW)
        self._overhead: deque[float] = deque(maxlen=WINDOW)
        self._prompt_rate: deque[float] = deque(maxlen=WINDOW)
        self._predicted_rate: deque[float] = deque(maxlen=WINDOW)
        self._cached: tuple[int, Config, Pacing] | None = None
        # What cached tokens cost: the ring's budget (context_cost.py).
        self.context = ContextCost()

    def observe(self, timings: Timings, wall_ms: float, *, asked: int) -> None:
        """One completed request: its ``timings``, its time on the wire, the tokens it asked for."""
        if asked <= 0:
            return  # priming: it computes the ring's chunks, not a suggestion
        if timings.prompt_n <= 0 and timings.predicted_n <= 0:
            return  # no work reported: nothing to learn from
        self.samples += 1
        self._prompt_n.append(timings.prompt_n)
        self._predicted_n.append(timings.predicted_n)
        self._overhead.append(max(0.0, wall_ms - timings.prompt_ms - timings.predicted_ms))
        if timings.prompt_n >= MIN_TOKENS:
            self._prompt_rate.append(timings.prompt_ms / timings.prompt_n)
        if timings.predicted_n >= MIN_TOKENS:
            self._predicted_rate.append(timings.predicted_ms / timings.predicted_n)
        self.context.observe(timings)

    @property
    def estimates(self) -> Estimates | None:
        """The server's speed, or None until enough replies were measured."""
        if min(len(self._prompt_rate), len(self._predicted_rate)) < MIN_SAMPLES:
            return None
        return Estimates(
            samples=self.samples,
            prompt_ms_per_token=statistics.median(self._prompt_rate),
            predicted_ms_per_token=statistics.median(self._predicted_rate),
            overhead_ms=statistics.median(self._overhead),
            prompt_tokens=round(statistics.median(self._prompt_n)),
            predicted_tokens=round(statistics.median(self._predicted_n)),
        )

    def pacing(self, config: Config) -> Pacing:
        """The pacing of the next request the user waits for."""
        cached = self._cached
        if cached is not None and cached[0] == self.samples and cached[1] is config:
            return cached[2]
        pacing = derive(config, self.estimates)
        self._cached = (self.samples, config, pacing)
        return pacing

    def figures(self, config: Config) -> dict[str, int]:
        """For LlamaNvimStats(): the estimates (µs per token) and the pacing."""
        estimates, pacing = self.estimates, self.pacing(config)
        return {
            "pace_samples": self.samples,
            "pace_prompt_us_per_token": round(estimates.prompt_ms_per_token * 1000)
            if estimates
            else 0,
            "pace_predicted_us_per_token": round(estimates.predicted_ms_per_token * 1000)
            if estimates
            else 0,
            "pace_debounce_ms": pacing.debounce_ms,
            "pace_n_predict": pacing.n_predict,
            "pace_t_max_predict_ms": pacing.t_max_predict_ms,
            "pace_ring_cap": self.context.cap(config, rise=False) or 0,
            "pace_ring_rise_pending": int(self.context.rise_pending(config)),
            "pace_us_per_cached_token": round(self.context.decision.us_per_kv * 1000),
        }

    def describe(self, config: Config) -> list[str]:
        """The :LlamaStatus lines: the server's measured speed and the pacing chosen."""
        estimates, pacing = self.estimates, self.pacing(config)
        if estimates is None:
            speed = f"not measured yet ({self.samples} replies)"
        else:
            speed = (
                f"prompt {estimates.prompt_ms_per_token:.2f} ms/token "
                f"({estimates.prompt_tokens} computed per request), "
                f"generation {estimates.predicted_ms_per_token:.2f} ms/token, "
                f"round trip +{estimates.overhead_ms:.0f} ms ({estimates.samples} replies)"
            )
        target = config.latency_target_ms
        if not target:
            how = "off (latency_target_ms = 0)"
        elif estimates is None:
            how = f"target {target} ms, until measured"
        else:
            how = f"target {target} ms"
        values = ", ".join(
            f"{name} {value} ({_origin(name, pacing, config)})"
            for name, value in (
                (DEBOUNCE, pacing.debounce_ms),
                (N_PREDICT, pacing.n_predict),
                (T_MAX_PREDICT, pacing.t_max_predict_ms),
            )
        )
        lines = [f"  speed:     {speed}", f"  pacing:    {how}: {values}"]
        if pacing.auto:
            # The pacing line's own continuation, before the next item.
            lines.append(
                f"             a request at most ~{pacing.request_ms} ms, "
                f"after a pause at most ~{pacing.pause_ms} ms"
            )
        lines.append(f"  ring:      {self.context.describe(config)}")
        return lines


def _origin(name: str, pacing: Pacing, config: Config) -> str:
    """Where a paced value comes from: derived, the user's setting, or the default."""
    if name in pacing.auto:
        return "auto"
    return "set" if _FIXED_BY[name] & config.given else "default"
