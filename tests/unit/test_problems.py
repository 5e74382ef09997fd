"""problems: what to tell the user about server trouble, and when to retry."""

from __future__ import annotations

import pytest

from llama_nvim.problems import Kind, ProblemReporter, ServerProblem, describe

ENDPOINT = "http://127.0.0.1:8012/infill"


def unreachable(detail: str = "[Errno 111] Connection refused") -> ServerProblem:
    return ServerProblem(Kind.UNREACHABLE, detail)


# -- ServerProblem -----------------------------------------------------------------------


def test_server_problem_carries_kind_and_detail() -> None:
    problem = ServerProblem(Kind.TIMEOUT, "after 5 s")
    assert problem.kind is Kind.TIMEOUT
    assert problem.detail == "after 5 s"
    assert str(problem) == "timeout: after 5 s"
    assert str(ServerProblem(Kind.LOADING)) == "loading"


# -- backoff ------------------------------------------------------------------------------


def test_new_reporter_may_request() -> None:
    assert ProblemReporter().may_request(0.0)


def test_may_request_honours_the_backoff_after_a_failure() -> None:
    reporter = ProblemReporter()
    reporter.on_problem(unreachable(), now=100.0)
    assert not reporter.may_request(100.0)
    assert not reporter.may_request(100.49)
    assert reporter.may_request(100.5)
    assert reporter.may_request(1000.0)


def test_backoff_doubles_with_each_failure_and_is_capped() -> None:
    reporter = ProblemReporter()
    delays = []
    now = 0.0
    for _ in range(6):
        reporter.on_problem(unreachable(), now)
        # smallest delay after which a request may go again
        delay = next(d / 100 for d in range(1, 10_000) if reporter.may_request(now + d / 100))
        delays.append(delay)
        now += delay
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("kind", "first", "cap"),
    [
        (Kind.UNREACHABLE, 0.5, 2.0),
        (Kind.TIMEOUT, 0.5, 4.0),
        (Kind.LOADING, 0.5, 1.0),
        (Kind.UNAUTHORIZED, 5.0, 30.0),
        (Kind.NO_FIM, 5.0, 30.0),
        (Kind.NOT_FOUND, 5.0, 30.0),
        (Kind.SERVER_ERROR, 0.5, 4.0),
        (Kind.BAD_RESPONSE, 0.5, 4.0),
        (Kind.TLS, 5.0, 30.0),
    ],
)
def test_backoff_first_delay_and_cap_per_kind(kind: Kind, first: float, cap: float) -> None:
    reporter = ProblemReporter()
    reporter.on_problem(ServerProblem(kind), now=0.0)
    assert not reporter.may_request(first - 0.01)
    assert reporter.may_request(first)
    for _ in range(20):
        reporter.on_problem(ServerProblem(kind), now=0.0)
    assert not reporter.may_request(cap - 0.01)
    assert reporter.may_request(cap)


def test_refused_request_is_not_backed_off() -> None:
    reporter = ProblemReporter()
    reporter.on_problem(ServerProblem(Kind.BAD_REQUEST, "HTTP 400: too long"), now=5.0)
    assert reporter.may_request(5.0)


def test_success_ends_the_backoff() -> None:
    reporter = ProblemReporter()
    for _ in range(5):
        reporter.on_problem(unreachable(), now=0.0)
    reporter.on_success()
    assert reporter.may_request(0.0)
    # and the next failure starts again from the first delay
    reporter.on_problem(unreachable(), now=0.0)
    assert reporter.may_request(0.5)


# -- what to announce ----------------------------------------------------------------------


def test_same_problem_is_announced_once() -> None:
    reporter = ProblemReporter()
    told = [reporter.on_problem(unreachable(), now=float(i)) for i in range(20)]
    assert told == [True] + [False] * 19


def test_transport_wording_does_not_make_a_problem_distinct() -> None:
    reporter = ProblemReporter()
    assert reporter.on_problem(unreachable("[Errno 111] Connection refused"), 0.0)
    assert not reporter.on_problem(unreachable("All connection attempts failed"), 1.0)


def test_each_distinct_kind_is_announced_once() -> None:
    reporter = ProblemReporter()
    assert reporter.on_problem(unreachable(), 0.0)
    assert reporter.on_problem(ServerProblem(Kind.TIMEOUT, "after 5 s"), 1.0)
    assert not reporter.on_problem(unreachable(), 2.0)
    assert not reporter.on_problem(ServerProblem(Kind.TIMEOUT, "after 5 s"), 3.0)


@pytest.mark.parametrize("kind", [Kind.BAD_REQUEST, Kind.BAD_RESPONSE])
def test_server_error_text_makes_a_refusal_distinct(kind: Kind) -> None:
    reporter = ProblemReporter()
    assert reporter.on_problem(ServerProblem(kind, "HTTP 400: a"), 0.0)
    assert reporter.on_problem(ServerProblem(kind, "HTTP 400: b"), 0.0)
    assert not reporter.on_problem(ServerProblem(kind, "HTTP 400: a"), 0.0)


def test_loading_is_quiet_but_backed_off() -> None:
    reporter = ProblemReporter()
    assert not reporter.on_problem(ServerProblem(Kind.LOADING, "HTTP 503"), 0.0)
    assert not reporter.on_problem(ServerProblem(Kind.LOADING, "HTTP 503"), 1.0)
    assert not reporter.may_request(1.0)
    # nothing was announced, so its end is not announced either
    assert not reporter.on_success()


def test_success_after_announced_outage_is_announced_once() -> None:
    reporter = ProblemReporter()
    reporter.on_problem(unreachable(), 0.0)
    assert reporter.on_success()
    assert not reporter.on_success()


def test_success_without_trouble_is_not_announced() -> None:
    assert not ProblemReporter().on_success()


def test_outage_that_recurs_after_recovery_is_announced_again() -> None:
    reporter = ProblemReporter()
    assert reporter.on_problem(unreachable(), 0.0)
    reporter.on_success()
    assert reporter.on_problem(unreachable(), 10.0)
    assert reporter.on_success()


def test_refused_request_is_not_announced_again_after_a_success() -> None:
    reporter = ProblemReporter()
    refused = ServerProblem(Kind.BAD_REQUEST, "HTTP 400: context too long")
    assert reporter.on_problem(refused, 0.0)
    # a refusal is not an outage: a success after it is not news
    assert not reporter.on_success()
    assert not reporter.on_problem(refused, 1.0)


def test_quiet_loading_after_an_outage_still_ends_with_recovery_message() -> None:
    reporter = ProblemReporter()
    assert reporter.on_problem(unreachable(), 0.0)
    assert not reporter.on_problem(ServerProblem(Kind.LOADING), 1.0)
    assert reporter.on_success()


# -- describe ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fragments"),
    [
        # where it looked, and how to start a server
        (Kind.UNREACHABLE, [ENDPOINT, "llama-server --fim-qwen-1.5b-default"]),
        (Kind.TIMEOUT, ["retrying"]),
        (Kind.LOADING, ["loading"]),
        # which setting to fix
        (Kind.UNAUTHORIZED, ["401", "g:llama_config.api_key", "--api-key"]),
        (Kind.NO_FIM, ["501", "FIM", "--fim-"]),
        (Kind.NOT_FOUND, [ENDPOINT, "404", "g:llama_config.endpoint"]),
        (Kind.BAD_REQUEST, ["refused"]),
        (Kind.SERVER_ERROR, ["failed", "retrying"]),
        (Kind.BAD_RESPONSE, ["reply"]),
        (Kind.TLS, ["TLS", ENDPOINT]),
    ],
)
def test_describe_tells_what_is_wrong_and_what_to_do(kind: Kind, fragments: list[str]) -> None:
    text = describe(ServerProblem(kind), ENDPOINT)
    for fragment in fragments:
        assert fragment in text
    assert "\n" not in text


def test_describe_differs_per_kind() -> None:
    texts = {describe(ServerProblem(kind), ENDPOINT) for kind in Kind}
    assert len(texts) == len(Kind)


@pytest.mark.parametrize(
    "kind",
    [
        Kind.UNREACHABLE,
        Kind.TIMEOUT,
        Kind.LOADING,
        Kind.TLS,
        Kind.BAD_REQUEST,
        Kind.SERVER_ERROR,
        Kind.BAD_RESPONSE,
    ],
)
def test_describe_includes_the_detail_in_parentheses(kind: Kind) -> None:
    assert "(HTTP 500: boom)" in describe(ServerProblem(kind, "HTTP 500: boom"), ENDPOINT)


def test_describe_without_detail_has_no_empty_parentheses() -> None:
    for kind in Kind:
        assert "()" not in describe(ServerProblem(kind), ENDPOINT)
