""":LlamaStatus: health.check against a fake server, and health.report's lines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from llama_nvim.client import InfillClient
from llama_nvim.health import Health, check, report
from llama_nvim.problems import Kind, ServerProblem, describe
from llama_nvim.protocol import ServerProps

ENDPOINT = "http://127.0.0.1:8012/infill"
PROPS = {
    "default_generation_settings": {"n_ctx": 8192},
    "model_path": "/models/qwen2.5-coder-1.5b-q8_0.gguf",
    "build_info": "b5000",
    "total_slots": 2,
}

Route = Callable[[httpx.Request], httpx.Response]


def ok_json(data: Any) -> Route:
    return lambda request: httpx.Response(200, json=data)


def status(code: int, message: str = "") -> Route:
    return lambda request: httpx.Response(code, json={"error": {"code": code, "message": message}})


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused")


class Server:
    """Routes by path; records what was asked."""

    def __init__(
        self,
        health: Route | None = None,
        props: Route | None = None,
        infill: Route | None = None,
    ) -> None:
        self.routes = {
            "/health": health or ok_json({"status": "ok"}),
            "/props": props or ok_json(PROPS),
            "/infill": infill or ok_json({"content": ""}),
        }
        self.asked: list[tuple[str, str]] = []
        self.bodies: list[Any] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.asked.append((request.method, request.url.path))
        if request.content:
            self.bodies.append(json.loads(request.content))
        return self.routes[request.url.path](request)


def run_check(server: Server) -> Health:
    async def main() -> Health:
        client = InfillClient(ENDPOINT, transport=httpx.MockTransport(server.handle))
        try:
            return await check(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


# -- check ------------------------------------------------------------------------------------


def test_healthy_fim_server() -> None:
    server = Server()
    health = run_check(server)
    assert health == Health(
        reachable=True,
        props=ServerProps(
            n_ctx=8192,
            model="/models/qwen2.5-coder-1.5b-q8_0.gguf",
            build="b5000",
            total_slots=2,
        ),
        fim=True,
    )
    assert server.asked == [("GET", "/health"), ("GET", "/props"), ("POST", "/infill")]


def test_fim_probe_asks_for_zero_tokens() -> None:
    server = Server()
    run_check(server)
    (probe,) = server.bodies
    assert probe["n_predict"] == 0
    assert probe["input_prefix"] == probe["input_suffix"] == probe["prompt"] == ""


def test_unreachable_server_is_not_probed_further() -> None:
    server = Server(health=refused)
    health = run_check(server)
    assert not health.reachable
    assert health.problem is not None
    assert health.problem.kind is Kind.UNREACHABLE
    assert health.props is None
    assert health.fim is None
    assert server.asked == [("GET", "/health")]


@pytest.mark.parametrize(("code", "kind"), [(500, Kind.SERVER_ERROR), (404, Kind.NOT_FOUND)])
def test_health_error_counts_as_not_reachable(code: int, kind: Kind) -> None:
    health = run_check(Server(health=status(code)))
    assert not health.reachable
    assert health.problem is not None
    assert health.problem.kind is kind


def test_loading_server_is_reachable_with_a_problem() -> None:
    server = Server(health=status(503, "Loading model"))
    health = run_check(server)
    assert health.reachable
    assert health.problem is not None
    assert health.problem.kind is Kind.LOADING
    assert health.fim is None
    assert server.asked == [("GET", "/health")]


def test_server_without_fim_tokens() -> None:
    health = run_check(Server(infill=status(501, "This server does not support infill")))
    assert health.reachable
    assert health.fim is False
    assert health.fim_problem is not None
    assert health.fim_problem.kind is Kind.NO_FIM
    assert health.props is not None


@pytest.mark.parametrize(
    ("route", "kind"),
    [(status(500, "boom"), Kind.SERVER_ERROR), (ok_json({"content": 1}), Kind.BAD_RESPONSE)],
)
def test_other_probe_failure_leaves_fim_unknown(route: Route, kind: Kind) -> None:
    health = run_check(Server(infill=route))
    assert health.reachable
    assert health.fim is None
    assert health.fim_problem is not None
    assert health.fim_problem.kind is kind


@pytest.mark.parametrize("props", [status(500), ok_json(["not", "props"])])
def test_props_failure_does_not_stop_the_fim_probe(props: Route) -> None:
    health = run_check(Server(props=props))
    assert health.reachable
    assert health.props is None
    assert health.fim is True


# -- report -----------------------------------------------------------------------------------

COUNTERS = {"requests": 7, "cancelled": 3, "failed": 1, "shown": 2, "events": 40}


def lines_for(health: Health, **kwargs: Any) -> list[str]:
    options: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "enabled": True,
        "auto_fim": True,
        "counters": COUNTERS,
    }
    options.update(kwargs)
    return report(health, **options)


def test_report_for_a_healthy_server() -> None:
    props = ServerProps(n_ctx=8192, model="m.gguf", build="b1", total_slots=2)
    assert lines_for(Health(reachable=True, props=props, fim=True)) == [
        "llama.nvim status",
        f"  endpoint:  {ENDPOINT}",
        "  plugin:    enabled, auto FIM on",
        "  server:    ok",
        "  model:     m.gguf",
        "  n_ctx:     8192, slots: 2",
        "  FIM:       supported",
        "  requests:  7 requests, 3 cancelled, 1 failed, 2 shown",
    ]


def test_report_for_an_unreachable_server() -> None:
    problem = ServerProblem(Kind.UNREACHABLE, "[Errno 111] Connection refused")
    lines = lines_for(Health(reachable=False, problem=problem))
    assert f"  server:    NOT reachable: {describe(problem, ENDPOINT)}" in lines
    assert not any(line.startswith(("  model:", "  FIM:")) for line in lines)


def test_report_for_a_loading_server() -> None:
    problem = ServerProblem(Kind.LOADING, "HTTP 503: Loading model")
    lines = lines_for(Health(reachable=True, problem=problem))
    assert f"  server:    {describe(problem, ENDPOINT)}" in lines


def test_report_for_a_model_without_fim() -> None:
    problem = ServerProblem(Kind.NO_FIM, "HTTP 501")
    lines = lines_for(Health(reachable=True, fim=False, fim_problem=problem))
    assert f"  FIM:       NOT supported: {describe(problem, ENDPOINT)}" in lines


def test_report_for_unknown_fim_support() -> None:
    problem = ServerProblem(Kind.SERVER_ERROR, "HTTP 500: boom")
    lines = lines_for(Health(reachable=True, fim=None, fim_problem=problem))
    assert f"  FIM:       unknown: {describe(problem, ENDPOINT)}" in lines


def test_report_names_an_unknown_model() -> None:
    lines = lines_for(Health(reachable=True, props=ServerProps(), fim=True))
    assert "  model:     (unknown)" in lines


def test_report_shows_disabled_plugin_and_auto_fim_off() -> None:
    lines = lines_for(Health(reachable=True, fim=True), enabled=False, auto_fim=False)
    assert "  plugin:    disabled, auto FIM off" in lines


def test_report_counts_missing_counters_as_zero() -> None:
    lines = lines_for(Health(reachable=True, fim=True), counters={})
    assert lines[-1] == "  requests:  0 requests, 0 cancelled, 0 failed, 0 shown"


def test_report_shows_the_last_problem_in_full() -> None:
    text = "llama-server failed (HTTP 500: " + "x" * 300 + "); retrying quietly"
    lines = lines_for(Health(reachable=True, fim=True), last_problem=text)
    assert f"  last problem: {text}" in lines
    assert not any("last problem" in line for line in lines_for(Health(True, fim=True)))


def test_report_shows_the_extra_context_when_there_is_a_ring() -> None:
    lines = lines_for(
        Health(reachable=True, fim=True), ring="ring 3/16 chunks", cache=42, tokens="exact"
    )
    assert "  context:   ring 3/16 chunks; cache 42 entries; tokens: exact" in lines
    assert not any(line.startswith("  context:") for line in lines_for(Health(True, fim=True)))
