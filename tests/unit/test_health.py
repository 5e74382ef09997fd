""":LlamaStatus and :checkhealth: health.check against a fake server, and the lines of each."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llama_nvim.client import InfillClient
from llama_nvim.config import Config, Problem
from llama_nvim.health import Health, check, check_now, config_items, report, server_items
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


def test_report_names_the_slot_requests_use() -> None:
    props = ServerProps(n_ctx=8192, total_slots=2)
    lines = lines_for(Health(reachable=True, props=props, fim=True), slot="1 (leased, of 2)")
    assert lines[lines.index("  n_ctx:     8192, slots: 2") + 1] == "  slot:      1 (leased, of 2)"


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


# -- :checkhealth -----------------------------------------------------------------------------


def test_check_now_runs_the_check_from_inside_a_running_event_loop() -> None:
    # pynvim calls the sync handler from within its running loop.
    server = Server()

    async def handler() -> Health:
        return check_now(Config(endpoint=ENDPOINT), transport=httpx.MockTransport(server.handle))

    health = asyncio.run(handler())
    assert health.reachable
    assert health.fim is True
    assert server.asked == [("GET", "/health"), ("GET", "/props"), ("POST", "/infill")]


def test_check_now_reports_an_unusable_ca_bundle_as_a_tls_problem(tmp_path: Path) -> None:
    config = Config(endpoint=ENDPOINT, ca_bundle=str(tmp_path / "missing.pem"))
    health = check_now(config, transport=httpx.MockTransport(Server().handle))
    assert not health.reachable
    assert health.problem is not None
    assert health.problem.kind is Kind.TLS
    assert "ca_bundle" in health.problem.detail


def levels(items: list[tuple[str, str]]) -> list[str]:
    return [level for level, _ in items]


def test_checkhealth_server_section_for_a_healthy_server() -> None:
    props = ServerProps(n_ctx=8192, model="m.gguf", build="b1", total_slots=2)
    items = server_items(Health(reachable=True, props=props, fim=True), ENDPOINT)
    assert items[:5] == [
        ("start", "llama.nvim: server"),
        ("ok", f"reachable: {ENDPOINT}"),
        ("ok", "model: m.gguf"),
        ("ok", "n_ctx: 8192, slots: 2"),
        ("ok", "FIM supported"),
    ]
    assert "--cache-reuse" in items[5][1]
    assert "error" not in levels(items)
    assert "warn" not in levels(items)


def test_checkhealth_server_section_for_an_unreachable_server() -> None:
    problem = ServerProblem(Kind.UNREACHABLE, "[Errno 111] Connection refused")
    items = server_items(Health(reachable=False, problem=problem), ENDPOINT)
    assert items == [
        ("start", "llama.nvim: server"),
        ("error", f"NOT reachable: {describe(problem, ENDPOINT)}"),
    ]


def test_checkhealth_server_section_for_a_model_without_fim() -> None:
    problem = ServerProblem(Kind.NO_FIM, "HTTP 501")
    items = server_items(Health(reachable=True, fim=False, fim_problem=problem), ENDPOINT)
    assert ("error", f"FIM NOT supported: {describe(problem, ENDPOINT)}") in items
    assert ("warn", "/props did not answer: model and n_ctx unknown") in items


def test_checkhealth_server_section_for_a_loading_server_warns() -> None:
    problem = ServerProblem(Kind.LOADING, "HTTP 503: Loading model")
    items = server_items(Health(reachable=True, problem=problem), ENDPOINT)
    assert levels(items) == ["start", "warn"]


def test_checkhealth_config_section_lists_problems_and_secret_rules() -> None:
    config = Config(exclude_globs=("*.secret",), disabled_filetypes=("markdown",))
    problems = [Problem("n_prefix", "g:llama_config.n_prefix must be a number")]
    items = config_items(config, problems)
    assert ("warn", "g:llama_config.n_prefix must be a number") in items
    assert not any(text == "g:llama_config: no problems" for _, text in items)
    texts = "\n".join(text for _, text in items)
    assert "*.secret" in texts
    assert ".env" in texts
    assert ".ssh/" in texts
    assert "filetypes: markdown" in texts


def test_checkhealth_config_section_without_problems() -> None:
    items = config_items(Config(), [])
    assert ("ok", "g:llama_config: no problems") in items
    assert "warn" not in levels(items)
