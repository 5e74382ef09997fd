"""What can go wrong talking to the server, and how loudly to say so.

The rule a user feels: one message per distinct problem (never one per
keystroke), quiet retries with backoff while it lasts, and one line when it is
over.
"""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    """Classes of server trouble, each with its own wording and retry pace."""

    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    LOADING = "loading"
    UNAUTHORIZED = "unauthorized"
    NO_FIM = "no_fim"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    SERVER_ERROR = "server_error"
    BAD_RESPONSE = "bad_response"
    TLS = "tls"


class ServerProblem(Exception):
    """A failed request, classified for the user."""

    def __init__(self, kind: Kind, detail: str = "") -> None:
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind
        self.detail = detail


# Retry pace per kind: first delay and cap, in seconds. Problems a restart of
# the server fixes are retried slowly; a loading model or a hiccup quickly.
_BACKOFF: dict[Kind, tuple[float, float]] = {
    Kind.UNREACHABLE: (0.5, 2.0),
    Kind.TIMEOUT: (0.5, 4.0),
    Kind.LOADING: (0.5, 1.0),
    Kind.UNAUTHORIZED: (5.0, 30.0),
    Kind.NO_FIM: (5.0, 30.0),
    Kind.NOT_FOUND: (5.0, 30.0),
    Kind.BAD_REQUEST: (0.0, 0.0),
    Kind.SERVER_ERROR: (0.5, 4.0),
    Kind.BAD_RESPONSE: (0.5, 4.0),
    Kind.TLS: (5.0, 30.0),
}

# Problems worth no message at all: the model is loading and will be ready soon.
_QUIET = {Kind.LOADING}

# Problems tied to a particular request rather than to the server being down.
_KEEP_DETAIL = {Kind.BAD_REQUEST, Kind.BAD_RESPONSE}


def describe(problem: ServerProblem, endpoint: str) -> str:
    """One line telling the user what is wrong and what to do; the essentials come first
    because in insert mode the line is cut to the width of the command line."""
    detail = f" ({problem.detail})" if problem.detail else ""
    kind = problem.kind
    if kind is Kind.UNREACHABLE:
        return (
            f"llama-server not reachable at {endpoint}; retrying quietly{detail}. Start it, "
            "e.g. `llama-server --fim-qwen-1.5b-default --port 8012`"
        )
    if kind is Kind.TIMEOUT:
        return f"llama-server too slow to answer{detail}; retrying quietly"
    if kind is Kind.UNAUTHORIZED:
        return (
            "API key rejected by llama-server (HTTP 401): set g:llama_config.api_key "
            "to the server's --api-key"
        )
    if kind is Kind.NO_FIM:
        return (
            "model has no FIM tokens (HTTP 501), it cannot fill in the middle: run a FIM model, "
            "e.g. `llama-server --fim-qwen-1.5b-default`"
        )
    if kind is Kind.NOT_FOUND:
        return f"HTTP 404 from {endpoint}: is g:llama_config.endpoint llama-server's /infill URL?"
    if kind is Kind.TLS:
        return f"TLS error talking to {endpoint}{detail}"
    if kind is Kind.BAD_REQUEST:
        return f"llama-server refused the request{detail}"
    if kind is Kind.SERVER_ERROR:
        return f"llama-server failed{detail}; retrying quietly"
    if kind is Kind.BAD_RESPONSE:
        return f"llama-server sent a malformed reply{detail}"
    return f"llama-server is loading the model{detail}"


class ProblemReporter:
    """Decides which problems to announce and when the next request may go.

    Pure state: the caller passes the current time, so tests need no clock.
    """

    def __init__(self) -> None:
        self._announced: set[tuple[Kind, str]] = set()
        self._failures = 0
        self._retry_at = 0.0
        self._outage_announced = False

    def may_request(self, now: float) -> bool:
        """False while backing off after a failure."""
        return now >= self._retry_at

    def on_problem(self, problem: ServerProblem, now: float) -> bool:
        """Record a failure; return True if the user should be told about it."""
        first, cap = _BACKOFF[problem.kind]
        self._failures += 1
        self._retry_at = now + min(cap, first * 2 ** (self._failures - 1))
        # A server's own error text is part of what makes a problem distinct;
        # transport wording (errno text) is not, or every retry would look new.
        detail = problem.detail if problem.kind in _KEEP_DETAIL else ""
        key = (problem.kind, detail)
        if problem.kind in _QUIET or key in self._announced:
            return False
        if len(self._announced) < 64:
            self._announced.add(key)
        if problem.kind not in _KEEP_DETAIL:
            self._outage_announced = True
        return True

    def on_success(self) -> bool:
        """Record a success; return True if an announced outage just ended."""
        recovered = self._outage_announced
        self._failures = 0
        self._retry_at = 0.0
        self._outage_announced = False
        # Outages may be announced again if they recur; a refused request is a
        # property of some contexts and would otherwise flash on and off.
        self._announced = {key for key in self._announced if key[0] in _KEEP_DETAIL}
        return recovered
