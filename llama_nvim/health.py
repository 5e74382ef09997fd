""":LlamaStatus and :checkhealth: is the server there, what does it run, can it do FIM."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from .backends import Wire
from .chat_client import ChatClient, models_url
from .client import InfillClient
from .config import Config, Problem
from .instruct import failure_text
from .privacy import DEFAULT_EXCLUDE_DIRS, DEFAULT_EXCLUDE_GLOBS
from .problems import Kind, ServerProblem
from .protocol import ServerProps

# :checkhealth waits for the answer, so each request is kept short.
CHECKHEALTH_TIMEOUT_S = 3.0

T = TypeVar("T")


@dataclass(frozen=True)
class Health:
    """What the server said when asked."""

    reachable: bool
    problem: ServerProblem | None = None
    props: ServerProps | None = None
    fim: bool | None = None
    fim_problem: ServerProblem | None = None
    model: str = ""  # the model that answered the probe
    wire: Wire = field(default_factory=Wire)  # the server kind asked


async def check(client: InfillClient) -> Health:
    """Ask /health, /props, and a zero-token /infill (501 means no FIM tokens).

    Other server kinds get their own health path and the probe in their format.
    """
    wire = client.wire
    try:
        await client.health()
    except ServerProblem as problem:
        if problem.kind is not Kind.LOADING:
            return Health(reachable=False, problem=problem, wire=wire)
        return Health(reachable=True, problem=problem, wire=wire)
    props: ServerProps | None
    try:
        props = await client.props()
    except ServerProblem:
        props = None
    probe: dict[str, object] = {
        "input_prefix": "",
        "input_suffix": "",
        "prompt": "",
        "n_predict": 0,
    }
    if wire.model:  # a router-mode server needs it to pick the model
        probe["model"] = wire.model
    try:
        reply = await client.infill(probe)
    except ServerProblem as problem:
        fim = False if problem.kind is Kind.NO_FIM else None
        return Health(reachable=True, props=props, fim=fim, fim_problem=problem, wire=wire)
    return Health(reachable=True, props=props, fim=True, model=reply.model, wire=wire)


def report(
    health: Health,
    *,
    endpoint: str,
    enabled: bool,
    auto_fim: bool,
    counters: dict[str, int],
    last_problem: str = "",
    ring: str = "",
    cache: int = 0,
    tokens: str = "",
    slot: str = "",
) -> list[str]:
    """The lines :LlamaStatus prints."""
    state = "enabled" if enabled else "disabled"
    describe = health.wire.describe
    lines = [
        "llama.nvim status",
        f"  endpoint:  {endpoint}",
        f"  plugin:    {state}, auto FIM {'on' if auto_fim else 'off'}",
    ]
    if not health.wire.cache_layout:
        lines.append(f"  API:       {health.wire.label}")
    if not health.reachable:
        assert health.problem is not None
        lines.append(f"  server:    NOT reachable: {describe(health.problem, endpoint)}")
    elif health.problem is not None:
        lines.append(f"  server:    {describe(health.problem, endpoint)}")
    else:
        lines.append("  server:    ok")
    if health.model or health.props is not None:
        lines.append(f"  model:     {_model(health) or '(unknown)'}")
    if health.props is not None:
        props = health.props
        lines.append(f"  n_ctx:     {props.n_ctx}, slots: {props.total_slots}")
    if slot:
        lines.append(f"  slot:      {slot}")
    if health.fim is True:
        lines.append("  FIM:       supported")
    elif health.fim is False:
        assert health.fim_problem is not None
        lines.append(f"  FIM:       NOT supported: {describe(health.fim_problem, endpoint)}")
    elif health.fim_problem is not None:
        lines.append(f"  FIM:       unknown: {describe(health.fim_problem, endpoint)}")
    if ring:
        lines.append(f"  context:   {ring}; cache {cache} entries; tokens: {tokens}")
    if last_problem:
        lines.append(f"  last problem: {last_problem}")
    lines.append(
        "  requests:  "
        + ", ".join(
            f"{counters.get(k, 0)} {k}" for k in ("requests", "cancelled", "failed", "shown")
        )
    )
    return lines


def _model(health: Health) -> str:
    """The model that answered, else the one /props names."""
    return health.model or (health.props.model if health.props is not None else "")


# -- :checkhealth llama_nvim -------------------------------------------------------------------


def check_now(config: Config, *, transport: httpx.AsyncBaseTransport | None = None) -> Health:
    """``check`` from synchronous code, with a client of its own.

    :checkhealth calls the host synchronously, and pynvim runs that handler
    inside the host's running asyncio loop: it can neither await nor start
    that loop again. So the very same ``check`` (same requests, same parsing,
    same wording of problems) runs on a private loop in a worker thread while
    the host's loop waits; Neovim waits for the answer anyway.
    """
    timeout_s = min(config.timeout_ms / 1000, CHECKHEALTH_TIMEOUT_S)

    async def ask() -> Health:
        try:
            client = InfillClient(
                config.endpoint,
                api_key=config.api_key,
                timeout_s=timeout_s,
                ca_bundle=config.ca_bundle,
                transport=transport,
                wire=Wire.from_config(config),
            )
        except (OSError, ssl.SSLError) as err:
            problem = ServerProblem(Kind.TLS, f"g:llama_config.ca_bundle cannot be used: {err}")
            return Health(reachable=False, problem=problem)
        try:
            return await check(client)
        finally:
            await client.aclose()

    return _run_alone(ask)


def _run_alone(ask: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``ask()`` run to its end on a private loop in a worker thread (see check_now)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-health") as pool:
        return pool.submit(lambda: asyncio.run(ask())).result()


# What :checkhealth says of a server kind other than llama-server's /infill without /props.
_NO_PROPS = (
    "not llama-server (no /props): n_ctx unknown, so no extra context from other files "
    "is sent, and no slot is leased; see :help llama_nvim-servers"
)

HealthItem = tuple[str, str]  # (vim.health level: start, ok, info, warn, error; text)


def server_items(health: Health, endpoint: str) -> list[HealthItem]:
    """The server section of :checkhealth."""
    items: list[HealthItem] = [("start", "llama.nvim: server")]
    describe = health.wire.describe
    if not health.reachable:
        assert health.problem is not None
        return [*items, ("error", f"NOT reachable: {describe(health.problem, endpoint)}")]
    if health.problem is not None:
        return [*items, ("warn", describe(health.problem, endpoint))]
    items.append(("ok", f"reachable: {endpoint}"))
    if not health.wire.cache_layout:
        items.append(("ok", f"API: {health.wire.label}"))
    if health.props is None and health.wire.cache_layout:
        items.append(("warn", "/props did not answer: model and n_ctx unknown"))
    elif health.props is None:
        items.append(("info", _NO_PROPS))
    if health.model or health.props is not None:
        items.append(("ok", f"model: {_model(health) or '(unknown)'}"))
    if health.props is not None:
        props = health.props
        items.append(("ok", f"n_ctx: {props.n_ctx}, slots: {props.total_slots}"))
    if health.fim is True:
        items.append(("ok", "FIM supported"))
    elif health.fim is False:
        assert health.fim_problem is not None
        items.append(("error", f"FIM NOT supported: {describe(health.fim_problem, endpoint)}"))
    elif health.fim_problem is not None:
        items.append(("warn", f"FIM support unknown: {describe(health.fim_problem, endpoint)}"))
    if not health.wire.cache_layout:
        return items
    # llama-server's /props does not say whether --cache-reuse is on.
    items.append(
        (
            "info",
            "--cache-reuse: not reported by /props; start llama-server with "
            "`--cache-reuse 256` to keep a large context cheap, see :help llama_nvim-server",
        )
    )
    return items


def config_items(config: Config, problems: list[Problem]) -> list[HealthItem]:
    """The configuration and secret-file sections of :checkhealth."""
    items: list[HealthItem] = [("start", "llama.nvim: configuration")]
    items.append(("ok", f"endpoint: {config.endpoint}"))
    items += [("warn", p.message) for p in problems]
    kind_problems = Wire.from_config(config).problems(config)  # e.g. Ollama without a model
    items += [("warn", text) for text in kind_problems]
    if not problems and not kind_problems:
        items.append(("ok", "g:llama_config: no problems"))
    items.append(("start", "llama.nvim: files never sent"))
    globs = ", ".join((*DEFAULT_EXCLUDE_GLOBS, *config.exclude_globs))
    items.append(("ok", f"file names: {globs}"))
    folders = ", ".join(f"{name}/" for name in DEFAULT_EXCLUDE_DIRS)
    items.append(("ok", f"every file under: {folders}"))
    if config.disabled_filetypes:
        items.append(("ok", f"filetypes: {', '.join(config.disabled_filetypes)}"))
    return items


# -- instruction editing (endpoint_inst) -------------------------------------------------------


@dataclass(frozen=True)
class InstHealth:
    """What the chat server of instruction editing said when asked."""

    models: tuple[str, ...] = ()  # what its model list names
    problem: ServerProblem | None = None
    llama_server: bool | None = None  # None: not known (it did not answer)


async def check_inst(client: ChatClient) -> InstHealth:
    """Ask the model list (every OpenAI-compatible server has one), then /props for the kind."""
    try:
        models = await client.models()
    except ServerProblem as problem:
        return InstHealth(problem=problem)
    server = await client.server()
    return InstHealth(tuple(models), llama_server=server.llama_server if server else None)


def _inst_server(health: InstHealth, endpoint: str) -> str:
    if health.problem is not None:
        return failure_text(health.problem, models_url(endpoint))
    if health.llama_server is None:
        kind = "kind unknown (/props did not answer)"
    elif health.llama_server:
        kind = "llama-server"
    else:
        kind = "OpenAI-compatible, not llama-server: OpenAI's fields only, no warm-up"
    served = f"; serves {', '.join(health.models[:3])}" if health.models else ""
    return f"ok, {kind}{served}"


def _inst_model(model: str) -> str:
    return f"{model} (model_inst)" if model else "not set (model_inst): the server's own"


def inst_report(health: InstHealth, *, endpoint: str, model: str, pending: int) -> list[str]:
    """The lines :LlamaStatus prints about instruction editing."""
    down = "NOT ok: " if health.problem is not None else ""
    return [
        "instruction editing (:LlamaInstruct)",
        f"  endpoint:  {endpoint}",
        f"  server:    {down}{_inst_server(health, endpoint)}",
        f"  model:     {_inst_model(model)}",
        f"  pending:   {pending} instruction{'' if pending == 1 else 's'}",
    ]


def check_inst_now(
    config: Config, *, transport: httpx.AsyncBaseTransport | None = None
) -> InstHealth:
    """``check_inst`` from synchronous code (:checkhealth), as check_now does ``check``."""

    async def ask() -> InstHealth:
        client = ChatClient(
            config.endpoint_inst,
            api_key=config.api_key,
            timeout_s=min(config.timeout_ms / 1000, CHECKHEALTH_TIMEOUT_S),
            ca_bundle=config.ca_bundle,
            transport=transport,
        )
        return await check_inst(client)

    return _run_alone(ask)


def inst_items(health: InstHealth, config: Config) -> list[HealthItem]:
    """The instruction-editing section of :checkhealth."""
    endpoint = config.endpoint_inst
    items: list[HealthItem] = [("start", "llama.nvim: instruction editing (:LlamaInstruct)")]
    if health.problem is not None:
        # A warning: instruction editing is optional, suggestions work without it.
        text = f"endpoint_inst {endpoint}: {_inst_server(health, endpoint)}"
        items.append(("warn", f"{text}; :LlamaInstruct fails until it answers"))
    else:
        items.append(("ok", f"endpoint_inst {endpoint}: {_inst_server(health, endpoint)}"))
    level = "ok" if config.model_inst else "info"
    items.append((level, f"model: {_inst_model(config.model_inst)}"))
    return items
