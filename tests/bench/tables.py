"""Figures and Markdown tables of together.py and growth.py (pure: no processes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.bench.proxy import Exchange

TOGETHER_LIMIT = 1.3  # Σ prompt_n together / alone, per editor


@dataclass(frozen=True)
class EditorFigures:
    """What one editor got from the server over one replay."""

    requests: int  # /infill requests sent
    answered: int  # of which answered (not cancelled)
    prompt_n: float  # Σ tokens the server computed for the answered ones
    cache_n: float  # Σ tokens it reused from the slot's KV cache for them
    visible_pct: float | None  # insert-mode keys after which a suggestion was visible
    latency_p50: float | None  # key → ghost text, typed keys, ms
    slots: list[int]  # the slots its requests asked for (-1: the server chooses)


def _cell(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when it is undefined."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def verdict(value: float | None, limit: float) -> str:
    """MET, MISSED or n/a for a value that should be at most ``limit``."""
    if value is None:
        return "n/a"
    return "MET" if value <= limit else "MISSED"


def together_rows(
    together: dict[str, EditorFigures], alone: dict[str, EditorFigures]
) -> tuple[list[str], list[list[str]]]:
    """One row per editor: alone, together, the prompt_n ratio and its verdict."""
    header = [
        "editor",
        "Σ prompt_n alone",
        "Σ prompt_n together",
        "together / alone",
        f"≤ {TOGETHER_LIMIT}",
        "prompt_n / answered request alone / together",
        "requests (answered) alone / together",
        "visible % alone / together",
        "key→ghost p50 ms alone / together",
        "slots asked for together",
    ]
    rows: list[list[str]] = []
    for name in sorted(set(together) & set(alone)):
        a, t = alone[name], together[name]
        share = ratio(t.prompt_n, a.prompt_n)
        rows.append(
            [
                name,
                f"{a.prompt_n:.0f}",
                f"{t.prompt_n:.0f}",
                _cell(share, "{:.2f}"),
                verdict(share, TOGETHER_LIMIT),
                f"{_cell(ratio(a.prompt_n, a.answered), '{:.1f}')} / "
                f"{_cell(ratio(t.prompt_n, t.answered), '{:.1f}')}",
                f"{a.requests} ({a.answered}) / {t.requests} ({t.answered})",
                f"{_cell(a.visible_pct, '{:.1f}')} / {_cell(t.visible_pct, '{:.1f}')}",
                f"{_cell(a.latency_p50, '{:.1f}')} / {_cell(t.latency_p50, '{:.1f}')}",
                ",".join(str(s) for s in t.slots) or "-",
            ]
        )
    return header, rows


@dataclass(frozen=True)
class GrowthRow:
    """Server and host cost per key of one replay (one ring size, one n_ctx)."""

    flags: str
    n_ctx: int
    ring: int
    keys: int
    requests: float | None
    prompt_n: float | None  # Σ prompt tokens computed (server /metrics)
    kv_evaluated: float  # Σ (cache_n + prompt_n) of answered requests
    n_extra: float | None  # mean ring chunks sent per answered request
    host_ms: float | None  # Python host CPU
    server_ms: float | None  # llama-server CPU
    visible_pct: float | None
    latency_p50: float | None


def answered_infill(exchanges: Sequence[Exchange]) -> list[Exchange]:
    return [
        ex
        for ex in exchanges
        if ex.path.startswith("/infill") and ex.t_done and not ex.cancelled and ex.status == 200
    ]


def kv_evaluated(exchanges: Sequence[Exchange]) -> float:
    """Σ cache_n + prompt_n over answered requests: the context each computed token saw."""
    return sum(
        (ex.final_timing("cache_n") or 0.0) + (ex.final_timing("prompt_n") or 0.0)
        for ex in answered_infill(exchanges)
    )


def mean_extra(exchanges: Sequence[Exchange]) -> float | None:
    answered = answered_infill(exchanges)
    return sum(ex.n_extra for ex in answered) / len(answered) if answered else None


def growth_row(
    flags: str, n_ctx: int, ring: int, figures: dict[str, float | None], exchanges: list[Any]
) -> GrowthRow:
    """A row from replay.run_mode's figures and its raw exchanges (as dicts)."""
    replies = [ex if isinstance(ex, Exchange) else Exchange(**ex) for ex in exchanges]
    return GrowthRow(
        flags=flags,
        n_ctx=n_ctx,
        ring=ring,
        keys=int(figures["keys"] or 0),
        requests=figures.get("infill_requests"),
        prompt_n=figures.get("prompt_n"),
        kv_evaluated=kv_evaluated(replies),
        n_extra=mean_extra(replies),
        host_ms=figures.get("helper_cpu_ms"),
        server_ms=figures.get("server_cpu_ms"),
        visible_pct=figures.get("visible_pct"),
        latency_p50=figures.get("latency_p50"),
    )


def _per_key(value: float | None, keys: int, pattern: str) -> str:
    return _cell(None if value is None or keys <= 0 else value / keys, pattern)


def growth_rows(rows: Sequence[GrowthRow]) -> tuple[list[str], list[list[str]]]:
    """The cost-growth table: one row per (server flags, n_ctx, ring size)."""
    header = [
        "server flags",
        "n_ctx",
        "ring chunks",
        "requests",
        "chunks sent (mean)",
        "prompt_n / key",
        "KV evaluated / key",
        "host CPU ms / key",
        "server CPU ms / key",
        "visible %",
        "key→ghost p50 ms",
    ]
    table = [
        [
            r.flags or "(defaults)",
            f"{r.n_ctx // 1024}k",
            str(r.ring),
            _cell(r.requests, "{:.0f}"),
            _cell(r.n_extra, "{:.1f}"),
            _per_key(r.prompt_n, r.keys, "{:.1f}"),
            _per_key(r.kv_evaluated, r.keys, "{:.0f}"),
            _per_key(r.host_ms, r.keys, "{:.3f}"),
            _per_key(r.server_ms, r.keys, "{:.2f}"),
            _cell(r.visible_pct, "{:.1f}"),
            _cell(r.latency_p50, "{:.1f}"),
        ]
        for r in rows
    ]
    return header, table
