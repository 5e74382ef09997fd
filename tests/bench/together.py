"""Two editors, one server: does each editor keep its own KV cache?

Run from the repository root::

    .venv/bin/python -m tests.bench.together             # the full trace
    .venv/bin/python -m tests.bench.together --quick     # a short smoke run

Two Neovims with llama.nvim (defaults) replay the session of ``trace.py`` at
the same time against one ``llama-server -np 2`` whose ``-c`` is doubled, so
each slot has the n_ctx of replay.py's one-slot server. Then, in the same
invocation and against the same server setup (fresh each time), each editor
replays its session alone. llama.nvim leases a slot per editor (slot_lease.py);
without the lease both editors' prompts, which share a long prefix, would land
in one slot and each request would throw away the other editor's context.

Both editors type the same keys (the same trace), editor B with the pauses of
the next seed, so the two are not in lock step; each works in its own copy of
the project, since the trace saves and checks the file it retypes. They share
one state folder (the lease files live there) and one endpoint URL (the lease
is per server URL), as two editors of one user would. One logging proxy sees
both; each connection is attributed to an editor by the process holding its
socket.

The figure under test: each editor's Σ prompt_n (tokens the server computed
for its answered requests, from the replies' ``timings``) together / alone,
target ≤ 1.3. Both Neovims (and their Python hosts) share one CPU, the server
has the other.

This file is not collected by pytest and is not part of the test suite.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench import procs
from tests.bench.proxy import Exchange, LoggingProxy
from tests.bench.replay import (
    REPO,
    SETTLE_S,
    SOURCE_DIR,
    SOURCE_FILES,
    Context,
    Mode,
    Server,
    close_nvim,
    compute_figures,
    make_context,
    make_project,
    open_editor,
    type_sessions,
)
from tests.bench.tables import EditorFigures, markdown_table, together_rows
from tests.bench.trace import Session, build_session

MODE = Mode("llama.nvim", "llama.nvim")
SLOTS = 2
EDITORS = ("A", "B")


class Attribution:
    """Which editor opened each proxy connection, by the process holding its socket.

    A connection the client closes before the proxy gets to look (a request
    cancelled at once) stays unattributed, unless there is only one editor.
    """

    def __init__(self, proxy: LoggingProxy, editors: list[str]) -> None:
        self.proxy = proxy
        self.only = editors[0] if len(editors) == 1 else None
        self.owners: dict[int, str] = {}  # Exchange.conn -> editor
        self._hosts: dict[int, str] = {}  # pid of an editor's process -> editor
        self._unknown: dict[int, int] = {}  # conn -> client port, not yet attributed
        self._lock = threading.Lock()
        proxy.on_accept = self._accepted

    def _accepted(self, conn: int, peer: Any) -> None:
        with self._lock:
            if self.only is not None:
                self.owners[conn] = self.only
                return
            self._unknown[conn] = int(peer[1])
            self._resolve()

    def add_editor(self, name: str, nvim_pid: int) -> None:
        """Count connections of ``nvim_pid`` and its children (its Python host) as ``name``'s."""
        with self._lock:
            for pid in [nvim_pid, *procs.descendants(nvim_pid)]:
                self._hosts[pid] = name
            self._resolve()

    def _resolve(self) -> None:
        if not self._hosts:
            return
        for conn, port in list(self._unknown.items()):
            pid = procs.socket_pid(port, self.proxy.port, list(self._hosts))
            if pid is not None:
                self.owners[conn] = self._hosts[pid]
                del self._unknown[conn]


@dataclass
class Typist:
    """One editor of a run: its session, its project, its Neovim."""

    name: str
    session: Session
    project: Path
    nvim: Any = None


def editor_figures(typist: Typist, probe: dict[str, Any], own: list[Exchange]) -> EditorFigures:
    """What one editor got: requests, server tokens, visible suggestions, latency."""
    stats: dict[str, int] = typist.nvim.call("LlamaNvimStats")
    figures = compute_figures(
        typist.session, probe, own, stats,
        nvim_ms=0.0, helper_ms=0.0, server_ms=0.0, metrics=({}, {}),
        wall_s=0.0, rss_kb=0, restored=True,
    )  # fmt: skip
    infill = [ex for ex in own if ex.path.startswith("/infill")]
    answered = [ex for ex in infill if ex.t_done and not ex.cancelled and ex.status == 200]
    slots = {ex.id_slot for ex in infill if ex.id_slot is not None}
    return EditorFigures(
        requests=len(infill),
        answered=len(answered),
        prompt_n=sum(ex.final_timing("prompt_n") or 0.0 for ex in answered),
        cache_n=sum(ex.final_timing("cache_n") or 0.0 for ex in answered),
        visible_pct=figures["visible_pct"],
        latency_p50=figures["latency_p50"],
        slots=sorted(slots),
    )


def report_stray(stray: list[Exchange]) -> None:
    """Say how many requests (and server tokens) no editor could be given."""
    if not stray:
        return
    cancelled = sum(1 for ex in stray if ex.cancelled)
    prompt_n = sum(ex.final_timing("prompt_n") or 0.0 for ex in stray)
    print(
        f"  note: {len(stray)} requests ({cancelled} cancelled, Σ prompt_n {prompt_n:.0f}) "
        "not attributed to an editor",
        flush=True,
    )


def run_editors(
    ctx: Context, sessions: dict[str, Session], label: str, *, shared_state: bool = True
) -> dict[str, EditorFigures]:
    """Replay ``sessions`` at once, one Neovim each, against a fresh two-slot server.

    Without ``shared_state`` each editor has a state folder of its own, so their
    slot leases do not see each other and both pin slot 0: the control case.
    """
    root = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=ctx.work))
    server = Server(
        ctx.server_bin, ctx.model, ctx.server_cpus, root / "llama-server.log", ctx.server_args,
        slots=SLOTS, n_ctx=SLOTS * ctx.n_ctx,
    )  # fmt: skip
    typists = [Typist(n, s, make_project(root / n)) for n, s in sessions.items()]
    proxy: LoggingProxy | None = None
    try:
        server.start()
        proxy = LoggingProxy(server.port)
        proxy.start()
        attribution = Attribution(proxy, [t.name for t in typists])
        endpoint = f"http://127.0.0.1:{proxy.port}/infill"
        for t in typists:
            state = root / "state" if shared_state else None
            t.nvim = open_editor(ctx, MODE, root / t.name / "home", t.project, endpoint, state)
            attribution.add_editor(t.name, t.nvim.call("getpid"))
        time.sleep(SETTLE_S)
        n_before = len(proxy.snapshot())
        for t in typists:
            t.nvim.exec_lua("return LlamaBench.start()")
        sent, _ = type_sessions([(t.nvim, t.session) for t in typists])
        probes = [t.nvim.exec_lua("return LlamaBench.finish()") for t in typists]
        exchanges = proxy.snapshot()[n_before:]
        out: dict[str, EditorFigures] = {}
        for t, probe, t_key in zip(typists, probes, sent, strict=True):
            probe["t_key"] = t_key
            own = [ex for ex in exchanges if attribution.owners.get(ex.conn) == t.name]
            out[t.name] = editor_figures(t, probe, own)
        report_stray([ex for ex in exchanges if ex.conn not in attribution.owners])
        return out
    finally:
        for t in typists:
            if t.nvim is not None:
                close_nvim(t.nvim)
        if proxy is not None:
            proxy.stop()
        server.stop()


def sessions_for(args: argparse.Namespace) -> dict[str, Session]:
    """The same keys for every editor; editor i gets the pauses of seed + i."""
    models = SOURCE_DIR / SOURCE_FILES[1]
    return {
        name: build_session(models, seed=args.seed + i, quick=args.quick)
        for i, name in enumerate(EDITORS)
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.together",
        description="Two llama.nvim editors on one two-slot llama-server, and each alone: "
        "server tokens per editor, together / alone.",
    )
    parser.add_argument("--quick", action="store_true", help="a shorter trace, for a smoke run")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of editor A's pauses")
    parser.add_argument(
        "--server-args",
        default="-fa off",
        metavar="ARGS",
        help="as replay's (default: %(default)s)",
    )
    parser.add_argument("--model", choices=("tiny", "slow"), default="tiny", help="as replay's")
    parser.add_argument(
        "--separate-state",
        action="store_true",
        help="control: each editor its own state folder, so the slot leases cannot see "
        "each other and both editors pin slot 0",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--verbose", action="store_true", help="print progress details")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="llama-nvim-together-"))
    try:
        ctx = make_context(args, work, {REPO})
        sessions = sessions_for(args)
        print(
            f"{len(ctx.session.steps)} keys, {ctx.session.duration_s:.0f} s per session; "
            f"server -np {SLOTS} -c {SLOTS * ctx.n_ctx} {' '.join(ctx.server_args)}; "
            f"Neovims on CPUs {sorted(ctx.nvim_cpus or [])}, "
            f"server on {sorted(ctx.server_cpus or [])}; work dir {work}",
            flush=True,
        )
        alone: dict[str, EditorFigures] = {}
        # Alone runs around the together run, so slow drift in the machine's load
        # does not favour either side.
        print("editor A alone ...", flush=True)
        alone.update(run_editors(ctx, {"A": sessions["A"]}, "alone-A"))
        print("A and B together ...", flush=True)
        together = run_editors(ctx, sessions, "together", shared_state=not args.separate_state)
        print("editor B alone ...", flush=True)
        alone.update(run_editors(ctx, {"B": sessions["B"]}, "alone-B"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    header, rows = together_rows(together, alone)
    print()
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
