"""client.InfillClient against a fake llama-server (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from llama_nvim.client import MAX_REPLY_BYTES, InfillClient, server_root
from llama_nvim.problems import Kind, ServerProblem
from llama_nvim.protocol import Completion, ServerProps, Timings

ENDPOINT = "http://127.0.0.1:8012/infill"

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


def make_client(handler: Handler, endpoint: str = ENDPOINT, **kwargs: Any) -> InfillClient:
    return InfillClient(endpoint, transport=httpx.MockTransport(handler), **kwargs)


def infill(handler: Handler, body: dict[str, Any] | None = None, **kwargs: Any) -> Completion:
    async def main() -> Completion:
        client = make_client(handler, **kwargs)
        try:
            return await client.infill(body if body is not None else {"prompt": ""})
        finally:
            await client.aclose()

    return asyncio.run(main())


def infill_problem(handler: Handler, **kwargs: Any) -> ServerProblem:
    with pytest.raises(ServerProblem) as info:
        infill(handler, **kwargs)
    return info.value


def reply(status: int = 200, **kwargs: Any) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)

    return handler


def raising(error: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


# -- server_root ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "root"),
    [
        ("http://127.0.0.1:8012/infill", "http://127.0.0.1:8012"),
        ("https://gpu.lan/llama/infill", "https://gpu.lan/llama"),
        ("http://h:1/v1/infill?x=1#f", "http://h:1/v1"),
        ("http://h:8012", "http://h:8012"),
        ("http://h:8012/", "http://h:8012"),
        ("http://h/custom/", "http://h/custom"),
    ],
)
def test_server_root_strips_infill_path(endpoint: str, root: str) -> None:
    assert server_root(endpoint) == root


# -- the request ---------------------------------------------------------------------------


def test_infill_posts_the_body_as_json_to_the_endpoint() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"content": "x"})

    body = {"input_prefix": "ä\n", "prompt": "  x", "input_suffix": "\n", "n_indent": 2}
    infill(handler, body)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == ENDPOINT
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == body


def test_no_authorization_header_without_api_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"content": ""})

    infill(handler, api_key="")
    assert "authorization" not in seen[0].headers


def test_api_key_sent_as_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"content": ""})

    infill(handler, api_key="KEY")
    assert seen[0].headers["authorization"] == "Bearer KEY"


def test_redirects_are_not_followed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(307, headers={"Location": "http://elsewhere.example/infill"})

    problem = infill_problem(handler)
    assert calls == [ENDPOINT]
    assert problem.detail.startswith("HTTP 307")


# -- good replies ------------------------------------------------------------------------------


def test_infill_parses_the_reply() -> None:
    data = {
        "content": "return 1",
        "tokens_cached": 9,
        "timings/prompt_n": 4,
        "timings/cache_n": 5,
        "timings/predicted_ms": 2.5,
    }
    completion = infill(reply(json=data))
    assert completion.content == "return 1"
    assert completion.tokens_cached == 9
    assert completion.timings == Timings(prompt_n=4, cache_n=5, predicted_ms=2.5)


def test_reply_of_exactly_one_mib_is_accepted() -> None:
    overhead = len(json.dumps({"content": ""}))
    content = "x" * (MAX_REPLY_BYTES - overhead)
    raw = json.dumps({"content": content}).encode()
    assert len(raw) == MAX_REPLY_BYTES
    assert infill(reply(content=raw)).content == content


# -- bad replies -------------------------------------------------------------------------------


def test_reply_over_one_mib_is_a_bad_response() -> None:
    raw = json.dumps({"content": "x" * MAX_REPLY_BYTES}).encode()
    problem = infill_problem(reply(content=raw))
    assert problem.kind is Kind.BAD_RESPONSE
    assert problem.detail == "reply larger than 1 MiB"


def test_endless_reply_is_not_read_past_one_mib() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while pulled < 1000:  # 64 MiB: a bound so a broken client still ends
            pulled += 1
            yield b" " * 65536

    problem = infill_problem(reply(content=endless()))
    assert problem.kind is Kind.BAD_RESPONSE
    assert pulled <= MAX_REPLY_BYTES // 65536 + 2


@pytest.mark.parametrize("raw", [b"<html>busy</html>", b"", b'{"content": "x"', b"\xff\xfe"])
def test_non_json_reply_is_a_bad_response(raw: bytes) -> None:
    problem = infill_problem(reply(content=raw))
    assert problem.kind is Kind.BAD_RESPONSE
    assert problem.detail == "reply is not valid JSON"


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({"content": 5}, "'content' is int, not a string"),
        ({"content": None}, "'content' is NoneType, not a string"),
        ({"text": "x"}, "'content' is NoneType, not a string"),
        (["x"], "expected a JSON object, got list"),
    ],
)
def test_reply_that_is_not_an_infill_reply_is_a_bad_response(data: Any, detail: str) -> None:
    problem = infill_problem(reply(json=data))
    assert problem.kind is Kind.BAD_RESPONSE
    assert problem.detail == detail


# -- HTTP errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Kind.UNAUTHORIZED),
        (404, Kind.NOT_FOUND),
        (501, Kind.NO_FIM),
        (503, Kind.LOADING),
        (400, Kind.BAD_REQUEST),
        (413, Kind.BAD_REQUEST),
        (500, Kind.SERVER_ERROR),
        (502, Kind.SERVER_ERROR),
    ],
)
def test_http_status_is_classified(status: int, kind: Kind) -> None:
    problem = infill_problem(reply(status, json={"error": {"code": status, "message": "m"}}))
    assert problem.kind is kind
    assert problem.detail == f"HTTP {status}: m"


def test_llama_server_error_message_is_the_detail() -> None:
    body = {"error": {"code": 400, "message": "context too long", "type": "invalid_request"}}
    problem = infill_problem(reply(400, json=body))
    assert problem.detail == "HTTP 400: context too long"


def test_plain_text_error_body_is_the_detail() -> None:
    problem = infill_problem(reply(500, text="  model crashed\n"))
    assert problem.detail == "HTTP 500: model crashed"


def test_long_plain_text_error_body_is_cut() -> None:
    problem = infill_problem(reply(500, text="e" * 5000))
    assert problem.detail == "HTTP 500: " + "e" * 200


@pytest.mark.parametrize("raw", [b"", b"<html><body>502 Bad Gateway</body></html>", b"  \n"])
def test_empty_or_html_error_body_gives_just_the_status(raw: bytes) -> None:
    problem = infill_problem(reply(502, content=raw))
    assert problem.detail == "HTTP 502"


# -- transport failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), Kind.UNREACHABLE),
        (httpx.ConnectTimeout("timed out"), Kind.TIMEOUT),
        (httpx.ReadTimeout("timed out"), Kind.TIMEOUT),
        (httpx.RemoteProtocolError("Server disconnected"), Kind.UNREACHABLE),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), Kind.UNREACHABLE),
        (httpx.WriteError("broken pipe"), Kind.UNREACHABLE),
        (httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), Kind.TLS),
    ],
)
def test_transport_errors_become_server_problems(error: Exception, kind: Kind) -> None:
    problem = infill_problem(raising(error))
    assert problem.kind is kind
    assert problem.detail == str(error)


def test_connect_error_caused_by_ssl_error_is_tls() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("handshake failed") from ssl.SSLError("certificate verify failed")

    assert infill_problem(handler).kind is Kind.TLS


def test_long_transport_error_text_is_cut() -> None:
    problem = infill_problem(raising(httpx.ConnectError("x" * 500)))
    assert problem.detail == "x" * 117 + "..."


def test_error_without_text_is_named_by_its_type() -> None:
    assert infill_problem(raising(httpx.ReadError(""))).detail == "ReadError"


def test_whole_exchange_has_a_deadline() -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    problem = infill_problem(never, timeout_s=0.01)
    assert problem.kind is Kind.TIMEOUT
    assert problem.detail == "after 0.01 s"


def test_malformed_endpoint_url_is_a_server_problem_not_an_httpx_error() -> None:
    # The config accepts this endpoint (it starts with http://); the client
    # promises that nothing but ServerProblem comes out of a request.
    with pytest.raises(ServerProblem):
        infill(reply(json={"content": "x"}), endpoint="http://127.0.0.1:80a/infill")


# -- cancellation -------------------------------------------------------------------------------


def test_cancelling_the_caller_cancels_the_request() -> None:
    arrived = asyncio.Event()
    outcome: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return httpx.Response(200, json={"content": "late"})

    async def main() -> None:
        client = make_client(slow)
        task = asyncio.ensure_future(client.infill({}))
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()

    asyncio.run(main())
    assert outcome == ["cancelled"]


# -- /props and /health ----------------------------------------------------------------------------


def test_props_gets_root_props_and_parses_it() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "default_generation_settings": {"n_ctx": 4096},
                "model_path": "m.gguf",
                "build_info": "b1",
                "total_slots": 1,
            },
        )

    async def main() -> ServerProps:
        client = make_client(handler, "http://h:9/llama/infill")
        try:
            return await client.props()
        finally:
            await client.aclose()

    props = asyncio.run(main())
    assert props == ServerProps(n_ctx=4096, model="m.gguf", build="b1", total_slots=1)
    assert seen[0].method == "GET"
    assert str(seen[0].url) == "http://h:9/llama/props"


def test_props_that_are_not_an_object_are_a_bad_response() -> None:
    async def main() -> None:
        client = make_client(reply(json=[1, 2]))
        try:
            await client.props()
        finally:
            await client.aclose()

    with pytest.raises(ServerProblem) as info:
        asyncio.run(main())
    assert info.value.kind is Kind.BAD_RESPONSE


@pytest.mark.parametrize(
    ("status", "kind"), [(200, None), (503, Kind.LOADING), (500, Kind.SERVER_ERROR)]
)
def test_health_raises_unless_ready(status: int, kind: Kind | None) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(status, json={"status": "ok"})

    async def main() -> Kind | None:
        client = make_client(handler)
        try:
            await client.health()
        except ServerProblem as problem:
            return problem.kind
        finally:
            await client.aclose()
        return None

    assert asyncio.run(main()) is kind
    assert urls == ["http://127.0.0.1:8012/health"]


def test_tokenize_posts_the_text_and_counts_the_tokens() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"tokens": [9, 8, 7]})

    async def main() -> int:
        client = make_client(handler)
        try:
            return await client.tokenize("def f():")
        finally:
            await client.aclose()

    assert asyncio.run(main()) == 3
    assert seen[0].method == "POST"
    assert str(seen[0].url) == "http://127.0.0.1:8012/tokenize"
    assert json.loads(seen[0].content) == {"content": "def f():"}


@pytest.mark.parametrize("data", [{"tokens": "9 8"}, {}, [1, 2]])
def test_tokenize_reply_without_a_token_list_is_a_bad_response(data: Any) -> None:
    async def main() -> int:
        client = make_client(reply(json=data))
        try:
            return await client.tokenize("x")
        finally:
            await client.aclose()

    with pytest.raises(ServerProblem) as info:
        asyncio.run(main())
    assert info.value.kind is Kind.BAD_RESPONSE
