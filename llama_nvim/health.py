""":LlamaStatus: is the server there, what does it run, can it do FIM."""

from __future__ import annotations

from dataclasses import dataclass

from .client import InfillClient
from .problems import Kind, ServerProblem, describe
from .protocol import ServerProps


@dataclass(frozen=True)
class Health:
    """What the server said when asked."""

    reachable: bool
    problem: ServerProblem | None = None
    props: ServerProps | None = None
    fim: bool | None = None
    fim_problem: ServerProblem | None = None


async def check(client: InfillClient) -> Health:
    """Ask /health, /props, and a zero-token /infill (501 means no FIM tokens)."""
    try:
        await client.health()
    except ServerProblem as problem:
        if problem.kind is not Kind.LOADING:
            return Health(reachable=False, problem=problem)
        return Health(reachable=True, problem=problem)
    props: ServerProps | None
    try:
        props = await client.props()
    except ServerProblem:
        props = None
    probe = {"input_prefix": "", "input_suffix": "", "prompt": "", "n_predict": 0}
    try:
        await client.infill(probe)
    except ServerProblem as problem:
        if problem.kind is Kind.NO_FIM:
            return Health(reachable=True, props=props, fim=False, fim_problem=problem)
        return Health(reachable=True, props=props, fim=None, fim_problem=problem)
    return Health(reachable=True, props=props, fim=True)


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
) -> list[str]:
    """The lines :LlamaStatus prints."""
    state = "enabled" if enabled else "disabled"
    lines = [
        "llama.nvim status",
        f"  endpoint:  {endpoint}",
        f"  plugin:    {state}, auto FIM {'on' if auto_fim else 'off'}",
    ]
    if not health.reachable:
        assert health.problem is not None
        lines.append(f"  server:    NOT reachable: {describe(health.problem, endpoint)}")
    elif health.problem is not None:
        lines.append(f"  server:    {describe(health.problem, endpoint)}")
    else:
        lines.append("  server:    ok")
    if health.props is not None:
        props = health.props
        lines.append(f"  model:     {props.model or '(unknown)'}")
        lines.append(f"  n_ctx:     {props.n_ctx}, slots: {props.total_slots}")
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
