"""What a computed or generated token costs as a function of the KV cache's length.

Starts llama-server on the generated model with the replay bench's flags (``-np 1 -c 8192
-b 1024 -ub 1024 --cache-reuse 256 -t 1``), once per flag set (default: ``-fa off`` and the
server's defaults), and for each cached length L and batch size n: fills the cache with L
tokens, then times requests that add n new tokens after them (``/completion`` with token
ids, so the cache holds exactly L). Also times generated tokens at each L. Prints a Markdown
table of medians from the server's ``timings`` (ms per token, and µs per token per 1000 KV
entries: the per-KV cost).

Usage::

    python -m tests.bench.kv_cost [--model tiny|slow] [--runs 3] [--lengths 0,1000,...]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.tiny_fim_model import CORPUS, SHAPES, build_model
from tests.harness import find_binary, free_port

SERVER_FLAGS = ["-np", "1", "-c", "8192", "-b", "1024", "-ub", "1024", "--cache-reuse", "256"]
SERVER_FLAGS += ["-t", "1", "--no-webui"]


def _start(server: str, model: Path, flags: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [server, "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    args += [*SERVER_FLAGS, *flags]
    log = Path(tempfile.gettempdir()) / f"kv-cost-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"llama-server exited {proc.returncode}, see {log}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"llama-server not healthy after 120 s, see {log}")
        time.sleep(0.2)


def _complete(client: httpx.Client, url: str, tokens: list[int], n_predict: int) -> Any:
    body = {"prompt": tokens, "n_predict": n_predict, "cache_prompt": True, "ignore_eos": True}
    reply = client.post(url + "/completion", json=body, timeout=600)
    reply.raise_for_status()
    return reply.json()["timings"]


def _tokens(client: httpx.Client, url: str, count: int) -> list[int]:
    ids: list[int] = client.post(url + "/tokenize", json={"content": CORPUS}).json()["tokens"]
    return (ids * (count // len(ids) + 1))[:count]


def measure(
    server: str, model: Path, flags: list[str], lengths: list[int], batches: list[int], runs: int
) -> dict[tuple[int, int], float]:
    """(L, n) → median ms per computed token; n = 0 is a generated token at L."""
    proc, url = _start(server, model, flags)
    grid: dict[tuple[int, int], float] = {}
    try:
        with httpx.Client() as client:
            ids = _tokens(client, url, max(lengths) + max(batches) + 64)
            for length in lengths:
                base = ids[: max(length, 1)]
                for n in batches:
                    times = []
                    for _ in range(runs):
                        _complete(client, url, base, 0)  # the cache holds L
                        timings = _complete(client, url, ids[: len(base) + n], 0)
                        times.append(timings["prompt_ms"] / max(timings["prompt_n"], 1))
                    grid[(length, n)] = statistics.median(times)
                gen = []
                for _ in range(runs):
                    _complete(client, url, base, 0)
                    timings = _complete(client, url, base + ids[:1], 16)
                    gen.append(timings["predicted_ms"] / max(timings["predicted_n"], 1))
                grid[(length, 0)] = statistics.median(gen)
    finally:
        proc.terminate()
        proc.wait(10)
    return grid


def table(
    name: str, grid: dict[tuple[int, int], float], lengths: list[int], batches: list[int]
) -> str:
    """A Markdown table: rows L, columns n (and generated), ms per token."""
    heads = [f"n={n}" for n in batches] + ["generated"]
    lines = [f"**{name}**: ms per new token, by cached length L (rows) and new tokens n", ""]
    lines.append("| L | " + " | ".join(heads) + " |")
    lines.append("|---|" + "---|" * len(heads))
    for length in lengths:
        cells = [f"{grid[(length, n)]:.2f}" for n in [*batches, 0]]
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lengths", default="0,1000,2000,4000,7000")
    parser.add_argument("--batches", default="8,32,64,128,256")
    parser.add_argument("--flags", action="append", help="a flag set (repeatable)")
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    server = find_binary("LLAMA_NVIM_SERVER", "llama-server", "llama-server-vulkan")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.gguf"
        build_model(model, shape=SHAPES[args.model])
        for flags in args.flags or ["-fa off", ""]:
            grid = measure(server, model, shlex.split(flags), lengths, batches, args.runs)
            name = f"`{flags}`" if flags else "server defaults"
            print(table(name, grid, lengths, batches), "\n", flush=True)


if __name__ == "__main__":
    main()
