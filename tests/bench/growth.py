"""How llama.nvim's cost grows with the ring of extra context and with n_ctx.

Run from the repository root::

    .venv/bin/python -m tests.bench.growth --quick          # 6 replays of ~46 s
    .venv/bin/python -m tests.bench.growth --quick --server-args '-fa off' --server-args ''

Replays the session of ``trace.py`` with llama.nvim (defaults but
``ring_n_chunks``) for every ring size by n_ctx (llama-server ``-c``, one slot,
otherwise replay.py's server flags) by set of extra server flags, each on a
fresh server and Neovim, pinned as replay.py pins them. Per key: prompt tokens
the server computed (/metrics), KV entries evaluated (Σ cache_n + prompt_n of
the answered requests: the context each computed token attends over), CPU of
the Python host and of llama-server.

This file is not collected by pytest and is not part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from tests.bench.replay import REPO, Context, Mode, make_context, run_mode
from tests.bench.tables import GrowthRow, growth_row, growth_rows, markdown_table

RINGS = (0, 16, 64)
N_CTXS = (8192, 32768)


def measure(ctx: Context, flags: str, n_ctx: int, ring: int) -> GrowthRow:
    """One replay with ``ring`` chunks on a server with ``-c n_ctx`` and ``flags``."""
    mode = Mode(f"ring{ring}-{n_ctx // 1024}k", "llama.nvim", config={"ring_n_chunks": ring})
    run_ctx = dataclasses.replace(ctx, n_ctx=n_ctx, server_args=tuple(shlex.split(flags)))
    figures, raw = run_mode(run_ctx, mode, 1)
    return growth_row(flags, n_ctx, ring, figures, raw["exchanges"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.growth",
        description="Server tokens and CPU per key for ring sizes by n_ctx (llama.nvim).",
    )
    parser.add_argument("--quick", action="store_true", help="the shorter trace")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the pauses")
    parser.add_argument(
        "--server-args",
        action="append",
        metavar="ARGS",
        help="extra llama-server flags of one row set (repeatable; default: '-fa off' "
        "as replay's; '' for the server's defaults)",
    )
    parser.add_argument(
        "--rings", default=",".join(map(str, RINGS)), help="ring_n_chunks values (%(default)s)"
    )
    parser.add_argument(
        "--n-ctx", default=",".join(map(str, N_CTXS)), help="llama-server -c values (%(default)s)"
    )
    parser.add_argument("--model", choices=("tiny", "slow"), default="tiny", help="as replay's")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--verbose", action="store_true", help="print progress details")
    args = parser.parse_args(argv)
    if args.server_args is None:
        args.server_args = ["-fa off"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rings = [int(v) for v in args.rings.split(",") if v]
    n_ctxs = [int(v) for v in args.n_ctx.split(",") if v]
    work = Path(tempfile.mkdtemp(prefix="llama-nvim-growth-"))
    rows: list[GrowthRow] = []
    try:
        base = argparse.Namespace(**{**vars(args), "server_args": ""})
        ctx = make_context(base, work, {REPO})
        print(
            f"{len(ctx.session.steps)} keys, {ctx.session.duration_s:.0f} s per session; "
            f"Neovim on CPUs {sorted(ctx.nvim_cpus or [])}, server on "
            f"{sorted(ctx.server_cpus or [])}; work dir {work}",
            flush=True,
        )
        for flags in args.server_args:
            for n_ctx in n_ctxs:
                for ring in rings:
                    print(f"flags {flags!r}, -c {n_ctx}, ring {ring} ...", flush=True)
                    try:
                        rows.append(measure(ctx, flags, n_ctx, ring))
                    except Exception:  # one failed replay must not lose the others
                        traceback.print_exc()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    header, table = growth_rows(rows)
    print()
    print(markdown_table(header, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
