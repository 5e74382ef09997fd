"""What never leaves the editor, and where requests go.

privacy.Privacy decides which files are secret; the engine must then neither
send nor gather their text; the client must talk to the configured endpoint
only (no proxies from the environment, no redirects) and never carry the API
key into an exception's text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llama_nvim.client import InfillClient
from llama_nvim.config import Config
from llama_nvim.engine import Engine
from llama_nvim.privacy import Privacy
from llama_nvim.problems import ServerProblem, describe
from tests.fakeserver import FakeServer, Reply
from tests.unit import engine_fixture
from tests.unit.engine_fixture import send

# -- the built-in secrets list ------------------------------------------------------------

SECRET_NAMES = [
    ".env",
    ".env.local",
    ".env.production",
    "prod.env",
    "x.pem",
    "x.key",
    "id_rsa",
    "id_rsa.pub",
    "id_ed25519",
    "id_ecdsa.pub",
    "cert.p12",
    "cert.pfx",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    "vault.kdbx",
]
SECRET_DIRS = [
    "/home/u/.ssh/config",
    "/home/u/.ssh/known_hosts",
    "/home/u/.ssh/keys/deploy",
    "/home/u/.gnupg/gpg.conf",
    "/home/u/.gnupg/private-keys-v1.d/ABCD",
    "/home/u/.aws/credentials",
    "/home/u/.password-store/mail.gpg",
    ".ssh/config",
    "proj/.gnupg/trustdb.gpg",
]
ORDINARY = [
    "main.py",
    "/home/u/proj/env.py",
    "/home/u/proj/environment.ts",
    "/home/u/proj/keyboard.c",
    "/home/u/proj/monkey.py",
    "/home/u/proj/pem_reader.py",
    "/home/u/proj/README.md",
    "/home/u/ssh/config",  # a folder named ssh, not .ssh
    "/home/u/proj/docs/gnupg.md",
    "",  # an unnamed buffer
]


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize("folder", ["", "/home/u/proj/", "rel/dir/"])
def test_secret_file_names_are_excluded_in_any_folder(folder: str, name: str) -> None:
    assert Privacy().excluded(folder + name)


@pytest.mark.parametrize("path", SECRET_DIRS)
def test_everything_under_private_folders_is_excluded(path: str) -> None:
    assert Privacy().excluded(path)


@pytest.mark.parametrize("path", ORDINARY)
def test_ordinary_files_are_not_excluded(path: str) -> None:
    assert not Privacy().excluded(path)


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("/home/u/proj/../.ssh/config", True),
        ("/home/u//.ssh//config", True),
        ("/home/u/./.ssh/./id", True),
        ("/home/u/.ssh/../proj/main.py", False),
        ("/home/u/proj/sub/../../.env", True),
    ],
)
def test_paths_are_normalized_before_matching(path: str, excluded: bool) -> None:
    assert Privacy().excluded(path) is excluded


# -- the user's globs and filetypes ----------------------------------------------------------


def test_user_globs_add_to_the_built_in_list() -> None:
    privacy = Privacy(["*.secret", "*/config/prod/*", "credentials*.json"])
    assert privacy.excluded("/p/deploy.secret")
    assert privacy.excluded("/p/config/prod/db.yml")
    assert privacy.excluded("/p/credentials-prod.json")
    assert privacy.excluded("/p/.env"), "the built-in list still applies"
    assert not privacy.excluded("/p/deploy.secrets")
    assert not privacy.excluded("/p/config/dev/db.yml")


@pytest.mark.parametrize("pattern", ["secrets/*", "config/prod/*.yml"])
def test_relative_folder_glob_matches_that_folder_anywhere(pattern: str) -> None:
    """Buffer names are absolute paths: a glob written relative to the project
    ("secrets/*", as in .gitignore) must still match, or it silently never does."""
    privacy = Privacy([pattern])
    target = "/home/u/proj/secrets/token.txt"
    if pattern.startswith("config"):
        target = "/home/u/proj/config/prod/db.yml"
    assert privacy.excluded(target), f"{pattern!r} does not match {target!r}"


def test_disabled_filetypes_exclude_whatever_the_name() -> None:
    privacy = Privacy(extra_filetypes=["markdown", "gitcommit"])
    assert privacy.excluded("/p/notes.md", "markdown")
    assert privacy.excluded("", "gitcommit"), "an unnamed buffer of a disabled filetype"
    assert not privacy.excluded("/p/notes.md", "text")
    assert not privacy.excluded("/p/main.py", "python")


def test_answers_do_not_depend_on_the_order_of_questions() -> None:
    # The answers are cached: a cached 'no' for one filetype must not leak to another.
    privacy = Privacy(extra_filetypes=["markdown"])
    assert not privacy.excluded("/p/a.md", "text")
    assert privacy.excluded("/p/a.md", "markdown")
    assert not privacy.excluded("/p/a.md", "text")


# -- the engine applies it -----------------------------------------------------------------


def event(filename: str, filetype: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "buf": 1,
        "tick": 1,
        "row": 3,
        "col": 4,
        "above": ["TOKEN = 'hunter2'", "b = 2", "c = 3"],
        "before": "x = ",
        "after": "",
        "below": [],
        "filename": filename,
        "filetype": filetype,
        "cwd": "/p",
        "manual": False,
        **extra,
    }


def chunk(filename: str, filetype: str = "") -> dict[str, Any]:
    lines = ["PASSWORD = 'hunter2'", "USER = 'root'", "HOST = 'db'", "PORT = 5432"]
    return {"lines": lines, "filename": filename, "filetype": filetype, "cwd": "/p"}


def run_engine(
    config: Config, act: Callable[[Engine], None]
) -> tuple[Engine, list[dict[str, Any]]]:
    """Run ``act`` on an engine whose server records /infill bodies; return both."""
    server = engine_fixture.FakeServer()
    server.answer = lambda body: engine_fixture.ok("y")

    async def main() -> Engine:
        engine, _ = engine_fixture.make_engine(server, config)
        act(engine)
        await engine_fixture.finish(engine)
        return engine

    return asyncio.run(main()), server.bodies


FAST_OPTIONS: dict[str, Any] = {"debounce_ms": 0, "speculative": False}
FAST = Config(**FAST_OPTIONS)


@pytest.mark.parametrize(
    ("filename", "filetype", "config"),
    [
        ("/p/.env", "sh", FAST),
        ("/home/u/.ssh/config", "sshconfig", FAST),
        ("/p/x.pem", "", FAST),
        ("/p/deploy.secret", "", Config(**FAST_OPTIONS, exclude_globs=("*.secret",))),
        ("/p/notes.md", "markdown", Config(**FAST_OPTIONS, disabled_filetypes=("markdown",))),
    ],
)
def test_engine_sends_nothing_from_excluded_files(
    filename: str, filetype: str, config: Config
) -> None:
    def act(engine: Engine) -> None:
        send(engine, "keystroke", event(filename, filetype))
        send(engine, "keystroke", event(filename, filetype, manual=True))
        send(engine, "chunk", chunk(filename, filetype))
        send(engine, "chunk", chunk(filename, filetype))
        send(engine, "keystroke", event("/p/ok.py", "python"))

    engine, bodies = run_engine(config, act)
    assert engine.ring.queued == 0, "an excluded file's text was gathered"
    assert len(bodies) == 1, "only the ordinary file was asked about"
    assert "PASSWORD" not in json.dumps(bodies)


def test_engine_control_an_ordinary_file_is_sent_and_gathered() -> None:
    def act(engine: Engine) -> None:
        send(engine, "keystroke", event("/p/main.py", "python"))
        send(engine, "chunk", chunk("/p/util.py", "python"))

    engine, bodies = run_engine(FAST, act)
    assert len(bodies) == 1
    assert engine.ring.queued == 1


@pytest.mark.parametrize(
    ("filetype", "buffer_enabled", "options", "sent"),
    [
        ("markdown", None, {"filetypes": {"*": True, "markdown": False}}, False),
        ("python", None, {"filetypes": {"*": False, "python": True}}, True),
        ("lua", None, {"filetypes": {"*": False, "python": True}}, False),
        ("python", False, {}, False),
        ("markdown", True, {"filetypes": {"markdown": False}}, True),
        ("markdown", True, {"disabled_filetypes": ("markdown",)}, False),
    ],
)
def test_engine_applies_filetype_rules_and_the_buffer_switch(
    filetype: str, buffer_enabled: bool | None, options: dict[str, Any], sent: bool
) -> None:
    extra = {} if buffer_enabled is None else {"buffer_enabled": buffer_enabled}
    config = Config(**FAST_OPTIONS, **options)

    def act(engine: Engine) -> None:
        send(engine, "keystroke", event("/p/a.x", filetype, **extra))
        send(engine, "chunk", {**chunk("/p/b.x", filetype), **extra})

    engine, bodies = run_engine(config, act)
    assert len(bodies) == int(sent)
    assert engine.ring.queued == int(sent)


def test_engine_sends_nothing_from_files_in_the_projects_llamaignore(
    tmp_path: Path,
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".llamaignore").write_text("# private\nnotes/\n*.sql\n!keep.sql\n")
    root = str(tmp_path)

    def act(engine: Engine) -> None:
        for name in ("notes/todo.py", "db/dump.sql"):
            send(engine, "keystroke", {**event(f"{root}/{name}", "python"), "cwd": root})
            send(engine, "chunk", {**chunk(f"{root}/{name}", "python"), "cwd": root})
        send(engine, "keystroke", {**event(f"{root}/db/keep.sql", "sql"), "cwd": root})

    engine, bodies = run_engine(FAST, act)
    assert len(bodies) == 1, "only the file the ignore file lets through was asked about"
    assert engine.ring.queued == 0
    assert "PASSWORD" not in json.dumps(bodies)


def test_an_unreadable_llamaignore_keeps_the_project_private_and_says_so_once(
    tmp_path: Path,
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".llamaignore").mkdir()  # exists, cannot be read as a file
    root = str(tmp_path)
    server = engine_fixture.FakeServer()

    async def main() -> list[tuple[str, bool]]:
        engine, editor = engine_fixture.make_engine(server, FAST)
        for _ in range(3):
            send(engine, "keystroke", {**event(f"{root}/a.py", "python"), "cwd": root})
        await engine_fixture.finish(engine)
        return editor.messages

    messages = asyncio.run(main())
    assert server.bodies == []
    assert len(messages) == 1
    assert ".llamaignore cannot be read" in messages[0][0]


# -- where requests go ----------------------------------------------------------------------------

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def trap() -> Iterator[FakeServer]:
    """A server nothing should ever reach."""
    server = FakeServer(lambda r: Reply(status=502, body=b"trapped", content_type="text/plain"))
    yield server
    server.close()


@pytest.fixture
def target() -> Iterator[FakeServer]:
    server = FakeServer(lambda r: Reply.completion("direct"))
    yield server
    server.close()


def call(client: InfillClient, method: str = "infill") -> Any:
    async def main() -> Any:
        try:
            if method == "infill":
                return await client.infill({"input_prefix": "", "input_suffix": "", "prompt": ""})
            return await getattr(client, method)()
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_proxies_from_the_environment_are_not_used(
    monkeypatch: pytest.MonkeyPatch, trap: FakeServer, target: FakeServer
) -> None:
    for var in PROXY_VARS:
        monkeypatch.setenv(var, trap.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert call(InfillClient(target.infill_url)).content == "direct"
    call(InfillClient(target.infill_url), "props")
    call(InfillClient(target.infill_url), "health")
    assert trap.connections == 0
    assert [r.path for r in target.requests] == ["/infill", "/props", "/health"]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_elsewhere_are_not_followed(
    trap: FakeServer, target: FakeServer, status: int
) -> None:
    target.responder = lambda r: Reply(
        status=status, body=b"", headers={"Location": trap.infill_url}
    )
    with pytest.raises(ServerProblem):
        call(InfillClient(target.infill_url, api_key="sk-redirect"))
    assert trap.connections == 0, "the request (and its API key) went to another host"


# -- the API key in exceptions ------------------------------------------------------------------

API_KEY = "sk-PRIVACY-77e1c0ffee"


def echo(status: int, shape: str) -> Callable[[httpx.Request], httpx.Response]:
    """A server that repeats the credentials it got in its error text."""

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        if shape == "json":
            error = {"code": status, "message": f"Invalid token {auth}", "type": "x"}
            return httpx.Response(status, json={"error": error})
        return httpx.Response(status, content=f"rejected {auth}".encode())

    return handler


def raising(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


@pytest.mark.parametrize(
    "handler",
    [
        raising(httpx.ConnectError("[Errno 111] Connection refused")),
        raising(httpx.ReadTimeout("timed out")),
        raising(httpx.RemoteProtocolError("Server disconnected without sending a response.")),
        echo(401, "json"),
        echo(400, "json"),
        echo(500, "json"),
        echo(403, "text"),
        echo(502, "text"),
    ],
    ids=[
        "refused",
        "timeout",
        "disconnected",
        "401-echo",
        "400-echo",
        "500-echo",
        "403-text-echo",
        "502-text-echo",
    ],
)
def test_api_key_never_appears_in_a_problem(
    handler: Callable[[httpx.Request], httpx.Response],
) -> None:
    client = InfillClient(
        "http://127.0.0.1:8012/infill", api_key=API_KEY, transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ServerProblem) as caught:
        call(client)
    problem = caught.value
    for text in (str(problem), problem.detail, repr(problem), describe(problem, client.endpoint)):
        assert API_KEY not in text, text
