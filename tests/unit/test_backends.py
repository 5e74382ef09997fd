"""Server kinds: choosing one from the endpoint, translating bodies, reading replies."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from llama_nvim.backends import PATH_KEY, REPO_KEY, Wire, decode_ollama, decode_openai, detect_kind
from llama_nvim.client import InfillClient, server_root
from llama_nvim.config import parse_config
from llama_nvim.fim_templates import PRESETS
from llama_nvim.health import check, config_items, report, server_items
from llama_nvim.problems import Kind, ServerProblem
from llama_nvim.protocol import ExtraChunk, ProtocolError, StreamError
from llama_nvim.request_builder import PlainShaping, RequestShaping, shaping_for
from tests.unit.engine_fixture import (
    FakeServer,
    admit_all,
    event,
    finish,
    make_config,
    make_engine,
    names,
    send,
)

COMPLETIONS = "http://127.0.0.1:8080/v1/completions"
OLLAMA = "http://127.0.0.1:11434/api/generate"
BODY: dict[str, Any] = {
    "input_prefix": "def f():\n",
    "prompt": "    return ",
    "input_suffix": "\n",
    "input_extra": [{"filename": "u.py", "text": "U = 1\n"}],
    "n_predict": 64,
    "n_indent": 4,
    "stop": ["\n\n\n"],
    "top_k": 40,
    "top_p": 0.9,
    "samplers": ["top_k", "top_p", "infill"],
    "stream": True,
    "cache_prompt": True,
    "t_max_prompt_ms": 500,
    "t_max_predict_ms": 250,
    "id_slot": -1,
    "response_fields": ["content"],
    "model": "coder",
    PATH_KEY: "src/f.py",
    REPO_KEY: "proj",
}


def wire(endpoint: str, **options: Any) -> Wire:
    config, problems = parse_config({"endpoint": endpoint, **options})
    assert problems == []
    return Wire.from_config(config)


# -- which kind ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        ("http://h:8012/infill", "infill"),
        ("http://h:8012/v1/completions", "completions"),
        ("http://h/llm/v1/completions/", "completions"),
        ("http://h:1234/completions", "completions"),
        ("http://h:11434/api/generate", "ollama"),
        ("http://h:8012/", "infill"),
        ("http://h:8012/proxy/fim", "infill"),
    ],
)
def test_the_kind_comes_from_the_endpoints_path(endpoint: str, kind: str) -> None:
    assert detect_kind(endpoint) == kind


def test_fim_api_overrides_the_path() -> None:
    assert detect_kind("http://h/proxy/fim", "ollama") == "ollama"
    assert wire("http://h/proxy/fim", fim_api="completions", model_fim="m").kind == "completions"


@pytest.mark.parametrize(
    "endpoint", ["http://h:8/infill", "http://h:8/v1/completions", "http://h:8/api/generate"]
)
def test_the_server_root_drops_each_kinds_path(endpoint: str) -> None:
    assert server_root(endpoint) == "http://h:8"


def test_templates_per_kind() -> None:
    assert wire(COMPLETIONS).template is PRESETS["qwen2.5-coder"]
    assert wire(COMPLETIONS, fim_template="codestral").template is PRESETS["codestral"]
    assert wire(OLLAMA, model_fim="m").template is None  # Ollama applies the model's own
    assert wire(OLLAMA, model_fim="m", fim_template="starcoder2").template is PRESETS["starcoder2"]
    assert wire("http://h/infill", fim_template="codellama").template is None


def test_only_infill_gets_the_cache_layout_and_only_ollama_is_surely_not_llama_server() -> None:
    infill, completions, ollama = Wire(), wire(COMPLETIONS), wire(OLLAMA, model_fim="m")
    assert [w.cache_layout for w in (infill, completions, ollama)] == [True, False, False]
    assert [w.llama_server for w in (infill, completions, ollama)] == [True, True, False]
    assert type(shaping_for(infill)) is RequestShaping
    assert isinstance(shaping_for(completions), PlainShaping)
    assert not shaping_for(ollama).primes_when_idle


def test_ollama_without_a_model_is_a_config_problem() -> None:
    config, _ = parse_config({"endpoint": OLLAMA})
    assert "model_fim must name the Ollama model" in Wire.from_config(config).problems(config)[0]
    assert Wire.from_config(parse_config({"endpoint": COMPLETIONS})[0]).problems(config) == []


# -- request bodies ------------------------------------------------------------------------------


def test_infill_bodies_go_out_unchanged() -> None:
    body = {k: v for k, v in BODY.items() if k not in (PATH_KEY, REPO_KEY)}
    assert Wire().translate(body) == body
    assert Wire().annotate(body, "f.py", "proj") is body


def test_a_completions_body_holds_the_templates_prompt_with_the_chunks() -> None:
    sent = wire(COMPLETIONS).translate(BODY)
    assert sent["prompt"] == PRESETS["qwen2.5-coder"].prompt(
        "def f():\n    return ", "\n", [ExtraChunk("u.py", "U = 1\n")], "src/f.py", "proj"
    )
    assert sent["prompt"].startswith("<|repo_name|>proj\n<|file_sep|>u.py\nU = 1\n")
    assert sent["max_tokens"] == 64
    assert sent["stream"] is True
    assert sent["model"] == "coder"
    assert sent["temperature"] == 0.1
    assert sent["stop"][0] == "\n\n\n"
    assert "<|endoftext|>" in sent["stop"]
    assert set(sent) == {"prompt", "max_tokens", "temperature", "top_p", "stop", "stream", "model"}


def test_a_completions_body_names_a_pinned_slot_and_the_exploring_temperature() -> None:
    sent = wire(COMPLETIONS).translate({**BODY, "id_slot": 1, "temperature": 0.9})
    assert (sent["id_slot"], sent["temperature"]) == (1, 0.9)


def test_a_zero_token_probe_asks_for_one_token_where_zero_may_be_refused() -> None:
    probe = {"input_prefix": "", "input_suffix": "", "prompt": "", "n_predict": 0}
    sent = wire(COMPLETIONS).translate(probe)
    assert sent["max_tokens"] == 1
    assert sent["stream"] is False
    assert "model" not in sent
    assert wire(OLLAMA, model_fim="m").translate(probe)["options"]["num_predict"] == 1


def test_an_ollama_body_leaves_the_fim_prompt_to_the_models_template() -> None:
    sent = wire(OLLAMA, model_fim="coder").translate(BODY)
    assert sent == {
        "model": "coder",
        "stream": True,
        "prompt": "def f():\n    return ",
        "suffix": "\n",
        "options": {"num_predict": 64, "temperature": 0.1, "top_p": 0.9, "stop": ["\n\n\n"]},
    }


def test_an_ollama_body_with_a_template_is_raw() -> None:
    sent = wire(OLLAMA, model_fim="coder", fim_template="starcoder2").translate(BODY)
    assert sent["raw"] is True
    assert "suffix" not in sent
    assert sent["prompt"].startswith("<repo_name>proj<file_sep>u.py\nU = 1\n")
    assert sent["prompt"].endswith("<fim_middle>")
    assert "<file_sep>" in sent["options"]["stop"]


# -- replies -------------------------------------------------------------------------------------


def sse(*events: Any, done: bool = True) -> bytes:
    blocks = [f"data: {json.dumps(e)}\n\n" for e in events] + (["data: [DONE]\n\n"] if done else [])
    return "".join(blocks).encode()


def choice(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"text": text, "index": 0, "finish_reason": finish}], "model": "m.gguf"}


FINAL = {
    **choice("", "length"),
    "usage": {"prompt_tokens": 7, "completion_tokens": 2},
    "timings": {"prompt_n": 7, "cache_n": 3, "prompt_ms": 1.5, "predicted_n": 2},
}


def test_a_streamed_completion_is_joined_with_its_timings_and_model() -> None:
    reply = decode_openai(sse(choice("ret"), choice("urn 1"), FINAL), "text/event-stream")
    assert reply["content"] == "return 1"
    assert reply["model"] == "m.gguf"
    assert reply["timings"]["cache_n"] == 3
    assert reply["tokens_evaluated"] == 7


def test_a_completion_stream_may_end_without_done_once_a_choice_finished() -> None:
    raw = sse(choice("x"), choice("", "stop"), done=False).replace(b"\n", b"\r\n")
    assert decode_openai(raw, "text/event-stream")["content"] == "x"


def test_a_plain_completion_reply() -> None:
    raw = json.dumps({**choice("a + b", "stop"), "usage": {"prompt_tokens": 4}}).encode()
    assert decode_openai(raw, "application/json") == {
        "content": "a + b",
        "model": "m.gguf",
        "tokens_evaluated": 4,
    }


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (sse(choice("x"), done=False), ProtocolError),
        (sse({"object": "text_completion"}), ProtocolError),
        (sse({"choices": [{"text": 3}]}), ProtocolError),
        (b"data: {nope\n\n", ProtocolError),
        (sse(choice("x"), {"error": {"message": "context exceeded"}}), StreamError),
    ],
)
def test_a_broken_completion_stream_is_an_error(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_openai(raw, "text/event-stream")


def ndjson(*events: Any) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


OLLAMA_END = {
    "model": "qwen2.5-coder:1.5b",
    "response": "",
    "done": True,
    "prompt_eval_count": 12,
    "prompt_eval_duration": 3_500_000,
    "eval_count": 4,
    "eval_duration": 8_000_000,
}


def test_an_ollama_stream_is_joined_with_its_counts() -> None:
    part = {"model": "qwen2.5-coder:1.5b", "response": "a +", "done": False}
    reply = decode_ollama(ndjson(part, {**part, "response": " b"}, OLLAMA_END), "")
    assert reply["content"] == "a + b"
    assert reply["model"] == "qwen2.5-coder:1.5b"
    assert reply["tokens_evaluated"] == 12
    assert reply["timings"] == {
        "prompt_n": 12,
        "prompt_ms": 3.5,
        "predicted_n": 4,
        "predicted_ms": 8.0,
    }


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (ndjson({"response": "a", "done": False}), ProtocolError),
        (b'{"response": "a"\n', ProtocolError),
        (ndjson({"response": 1, "done": True}), ProtocolError),
        (ndjson({"response": "a", "done": False}, {"error": "out of memory"}), StreamError),
        (ndjson([1, 2]), ProtocolError),
    ],
)
def test_a_broken_ollama_stream_is_an_error(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_ollama(raw, "application/x-ndjson")


# -- through the client ----------------------------------------------------------------------------


class PathServer:
    """Answers by path and records what arrived."""

    def __init__(self, routes: dict[str, httpx.Response]) -> None:
        self.routes = routes
        self.asked: list[tuple[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.asked.append((request.url.path, body))
        return self.routes.get(request.url.path, httpx.Response(404, text="404 page not found"))


def client_for(endpoint: str, server: PathServer, **options: Any) -> InfillClient:
    transport = httpx.MockTransport(server.handle)
    return InfillClient(endpoint, transport=transport, wire=wire(endpoint, **options))


def test_a_completion_through_the_client() -> None:
    stream = sse(choice("ret"), FINAL)
    server = PathServer({"/v1/completions": httpx.Response(200, content=stream, headers=SSE)})
    completion = asyncio.run(client_for(COMPLETIONS, server).infill(BODY))
    assert completion.content == "ret"
    assert completion.model == "m.gguf"
    assert (completion.timings.prompt_n, completion.timings.cache_n) == (7, 3)
    assert completion.tokens_evaluated == 7
    path, sent = server.asked[0]
    assert path == "/v1/completions"
    assert sent["prompt"].endswith("<|fim_middle|>")


SSE = {"content-type": "text/event-stream"}


def test_an_ollama_completion_through_the_client_and_no_llama_server_requests() -> None:
    reply = httpx.Response(200, content=ndjson({"response": "x", "done": False}, OLLAMA_END))
    server = PathServer({"/api/generate": reply})
    client = client_for(OLLAMA, server, model_fim="coder")

    async def main() -> None:
        completion = await client.infill(BODY)
        assert (completion.content, completion.timings.predicted_n) == ("x", 4)
        for ask in (client.props(), client.tokenize("x")):
            with pytest.raises(ServerProblem) as caught:
                await ask
            assert caught.value.kind is Kind.NOT_FOUND

    asyncio.run(main())
    assert [path for path, _ in server.asked] == ["/api/generate"]


def test_a_server_without_props_behind_v1_completions_is_asked_once() -> None:
    server = PathServer({})
    client = client_for(COMPLETIONS, server)

    async def main() -> None:
        for _ in range(3):
            with pytest.raises(ServerProblem):
                await client.props()

    asyncio.run(main())
    assert [path for path, _ in server.asked] == ["/props"]


def test_status_names_the_kind_and_the_model_that_answered() -> None:
    routes = {
        "/v1/models": httpx.Response(200, json={"data": []}),
        "/v1/completions": httpx.Response(
            200, json={**choice("", "length"), "model": "vllm-coder"}
        ),
    }
    server = PathServer(routes)
    health = asyncio.run(check(client_for(COMPLETIONS, server, model_fim="vllm-coder")))
    assert health.fim is True
    assert health.model == "vllm-coder"
    lines = report(health, endpoint=COMPLETIONS, enabled=True, auto_fim=True, counters={})
    assert "  API:       /v1/completions (OpenAI-compatible), FIM template qwen2.5-coder" in lines
    assert "  model:     vllm-coder" in lines
    assert not any(line.startswith("  n_ctx:") for line in lines)
    probe = next(body for path, body in server.asked if path == "/v1/completions")
    assert probe["model"] == "vllm-coder"


@pytest.mark.parametrize(
    ("kind", "endpoint", "options", "expected"),
    [
        (Kind.UNREACHABLE, OLLAMA, {"model_fim": "m"}, "Ollama not reachable at " + OLLAMA),
        (Kind.NOT_FOUND, COMPLETIONS, {}, "the server answered x: check g:llama_config.endpoint"),
        (Kind.UNAUTHORIZED, COMPLETIONS, {}, "API key rejected by the server (HTTP 401)"),
        (Kind.BAD_REQUEST, OLLAMA, {"model_fim": "m"}, "Ollama refused the request"),
        (Kind.TIMEOUT, COMPLETIONS, {}, "the server too slow to answer"),
    ],
)
def test_messages_name_the_kind_of_server(
    kind: Kind, endpoint: str, options: dict[str, Any], expected: str
) -> None:
    text = wire(endpoint, **options).describe(ServerProblem(kind, "x"), endpoint)
    assert expected in text
    assert "llama-server" not in text


# -- the request builder's part -----------------------------------------------------------------


def test_requests_for_a_template_carry_the_whole_suffix_the_chunks_and_the_files_name() -> None:
    config = make_config(endpoint=COMPLETIONS, n_suffix_fim=1)
    below = tuple(f"line_{i} = {i}" for i in range(6))

    async def main() -> tuple[FakeServer, bool]:
        server = FakeServer()
        engine, _ = make_engine(server, config, shaping=shaping_for(Wire.from_config(config)))
        engine.n_ctx = 4096
        admit_all(engine, [("/nowhere/a.py", "a"), ("/nowhere/b.py", "b")])
        send(engine, "keystroke", event(below=below, filename="/nowhere/src/m.py"))
        await finish(engine)
        return server, engine.builder.shaping.primes_when_idle

    server, primes = asyncio.run(main())
    (body,) = server.bodies  # (sent to the fake /infill untranslated: the builder's output)
    assert names(body) == ["a.py", "b.py"], "the ring's chunks, oldest first, no far suffix"
    assert body["input_suffix"] == "\n" + "".join(f"{line}\n" for line in below)
    assert (body[PATH_KEY], body[REPO_KEY]) == ("src/m.py", "nowhere")
    assert not primes


def test_checkhealth_for_ollama_says_what_it_is_without_llama_servers_warnings() -> None:
    reply = httpx.Response(200, content=ndjson(OLLAMA_END))
    server = PathServer(
        {"/api/version": httpx.Response(200, json={"version": "0.9"}), "/api/generate": reply}
    )
    health = asyncio.run(check(client_for(OLLAMA, server, model_fim="coder")))
    items = server_items(health, OLLAMA)
    assert ("ok", "API: Ollama /api/generate, the model's template") in items
    assert ("ok", "model: qwen2.5-coder:1.5b") in items
    assert ("ok", "FIM supported") in items
    assert not [item for item in items if item[0] in ("warn", "error")], items
    assert any("no /props" in text for level, text in items if level == "info")
    assert not any("--cache-reuse" in text for _, text in items)
    assert [path for path, _ in server.asked] == ["/api/version", "/api/generate"]


def test_checkhealth_warns_of_ollama_without_a_model() -> None:
    config, problems = parse_config({"endpoint": OLLAMA})
    items = config_items(config, problems)
    assert any(level == "warn" and "model_fim must name" in text for level, text in items)
    assert ("ok", "g:llama_config: no problems") not in items
