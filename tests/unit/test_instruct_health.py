""":LlamaStatus and :checkhealth on instruction editing: endpoint_inst, its kind, model_inst."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from llama_nvim.chat_client import ChatClient, models_url
from llama_nvim.config import Config
from llama_nvim.health import InstHealth, check_inst, check_inst_now, inst_items, inst_report
from llama_nvim.problems import Kind, ServerProblem

ENDPOINT = "http://127.0.0.1:8012/v1/chat/completions"
MODELS = {"object": "list", "data": [{"id": "qwen-coder"}, {"id": "other"}]}
PROPS = {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 2}

Route = Callable[[httpx.Request], httpx.Response]


def server(*, props: bool = True, models_status: int = 200) -> Route:
    """llama-server (with /props) or another OpenAI-compatible server (404 there)."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(models_status, json=MODELS)
        if request.url.path == "/props" and props:
            return httpx.Response(200, json=PROPS)
        return httpx.Response(404, json={"detail": "Not Found"})

    return route


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused")


def ask(route: Route, endpoint: str = ENDPOINT) -> InstHealth:
    client = ChatClient(endpoint, transport=httpx.MockTransport(route))
    return asyncio.run(check_inst(client))


def test_the_model_list_sits_beside_the_chat_endpoint() -> None:
    assert models_url(ENDPOINT) == "http://127.0.0.1:8012/v1/models"
    assert models_url("https://h/openai/chat/completions/") == "https://h/openai/models"


def test_a_llama_server_answers_with_its_models_and_kind() -> None:
    health = ask(server())
    assert health == InstHealth(("qwen-coder", "other"), llama_server=True)


def test_an_openai_compatible_server_is_told_apart_by_its_missing_props() -> None:
    assert ask(server(props=False)).llama_server is False


@pytest.mark.parametrize(
    ("route", "kind"),
    [(refused, Kind.UNREACHABLE), (server(models_status=401), Kind.UNAUTHORIZED)],
)
def test_a_failed_probe_is_the_problem(route: Route, kind: Kind) -> None:
    health = ask(route)
    assert health.problem is not None
    assert health.problem.kind is kind
    assert health.llama_server is None


def test_status_lines_for_a_healthy_llama_server() -> None:
    lines = inst_report(
        InstHealth(("qwen-coder",), llama_server=True), endpoint=ENDPOINT, model="", pending=1
    )
    assert lines == [
        "instruction editing (:LlamaInstruct)",
        f"  endpoint:  {ENDPOINT}",
        "  server:    ok, llama-server; serves qwen-coder",
        "  model:     not set (model_inst): the server's own",
        "  pending:   1 instruction",
    ]


def test_status_lines_for_a_dead_endpoint_say_so_and_where() -> None:
    problem = ServerProblem(Kind.UNREACHABLE, "[Errno 111] Connection refused")
    lines = inst_report(InstHealth(problem=problem), endpoint=ENDPOINT, model="m", pending=0)
    assert lines[2] == (
        "  server:    NOT ok: server not reachable at "
        "http://127.0.0.1:8012/v1/models ([Errno 111] Connection refused)"
    )
    assert lines[3:] == ["  model:     m (model_inst)", "  pending:   0 instructions"]


def test_status_lines_for_a_wrong_endpoint_name_the_option() -> None:
    problem = ServerProblem(Kind.NOT_FOUND, "HTTP 404")
    lines = inst_report(InstHealth(problem=problem), endpoint=ENDPOINT, model="", pending=0)
    assert lines[2] == (
        "  server:    NOT ok: HTTP 404 from http://127.0.0.1:8012/v1/models: "
        "is g:llama_config.endpoint_inst a chat completions URL?"
    )


def test_checkhealth_section_for_an_openai_compatible_server() -> None:
    config = Config(endpoint_inst=ENDPOINT, model_inst="qwen-coder")
    health = check_inst_now(config, transport=httpx.MockTransport(server(props=False)))
    assert inst_items(health, config) == [
        ("start", "llama.nvim: instruction editing (:LlamaInstruct)"),
        (
            "ok",
            f"endpoint_inst {ENDPOINT}: ok, OpenAI-compatible, not llama-server: "
            "OpenAI's fields only, no warm-up; serves qwen-coder, other",
        ),
        ("ok", "model: qwen-coder (model_inst)"),
    ]


def test_checkhealth_section_for_a_dead_endpoint_is_a_warning() -> None:
    config = Config(endpoint_inst=ENDPOINT)
    health = check_inst_now(config, transport=httpx.MockTransport(refused))
    _start, endpoint, model = inst_items(health, config)
    assert endpoint[0] == "warn"
    assert endpoint[1].startswith(
        f"endpoint_inst {ENDPOINT}: server not reachable at http://127.0.0.1:8012/v1/models ("
    )
    assert endpoint[1].endswith("; :LlamaInstruct fails until it answers")
    assert model == ("info", "model: not set (model_inst): the server's own")
