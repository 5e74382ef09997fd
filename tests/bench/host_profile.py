"""Where llama.nvim's Python host spends its CPU: py-spy samples, summed by area.

Two steps, beside a replay bench (py-spy is a dev tool: `pip install py-spy`):

    python -m tests.bench.host_profile watch /tmp/prof &   # attaches to every llama.nvim host
    python -m tests.bench.replay --model tiny --modes llama.nvim ...
    python -m tests.bench.host_profile summary /tmp/prof/*.txt [--keys 546 --cpu-ms-per-key 12.9]

``watch`` starts `py-spy record --format raw` on each Python remote-plugin
host that loads this checkout's llama.nvim (until it exits); ``summary`` sorts the samples of
those files by the area of the innermost frame that belongs to one (waits and
start-up left out, as the bench leaves them out), and scales the shares to ms
per key when given the bench's host CPU per key.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

# Checked from the innermost frame outwards: the first frame naming one of these decides.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("JSON encoding and reply parsing", ("(json/", "(llama_nvim/protocol.py",
                                         "(llama_nvim/backends.py")),
    ("HTTP client (httpx, transport)", ("(httpx/", "(httpcore/", "(h11/", "(anyio/", "(sniffio/",
                                        "(llama_nvim/transport.py", "(llama_nvim/client.py",
                                        "(ssl.py", "(http/")),
    ("RPC to Neovim (pynvim, msgpack)", ("(pynvim/", "(msgpack/", "(greenlet/")),
    ("tokenizer (tiktoken)", ("(tiktoken", "(llama_nvim/tokens.py")),
    ("engine logic (llama_nvim)", ("(llama_nvim/",)),
]  # fmt: skip
OTHER = "asyncio and other"
# Start-up work, before the bench's measured session: imports, the token tables.
STARTUP = ("(<frozen importlib", "TokenCounter.load (", "LlamaPlugin._start (")
# Innermost frames that are waits, not work (py-spy cannot always tell them apart).
IDLE = ("EpollSelector.select (selectors.py:468)", "_worker (concurrent/futures/thread.py:81)",
        "wait (threading.py:")  # fmt: skip


def host_pids(checkout: Path) -> set[int]:
    """Live Python remote-plugin hosts that load the llama.nvim entry of ``checkout``."""
    entry_path = str(checkout.resolve() / "rplugin/python3/llama_nvim").encode()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"start_host" in cmdline and entry_path in cmdline:
            found.add(int(entry))
    return found


def watch(out: Path, rate: int, checkout: Path) -> None:
    """Record every new host of ``checkout`` with py-spy until interrupted."""
    out.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()
    spy = Path(sys.executable).with_name("py-spy")
    while True:
        for pid in host_pids(checkout) - seen:
            seen.add(pid)
            subprocess.Popen(
                [str(spy), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                 "--output", str(out / f"host-{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        time.sleep(0.2)


def area(stack: str) -> str:
    """The area of one collapsed stack (frames root first, ';'-separated)."""
    for frame in reversed(stack.split(";")):
        if frame.startswith("Handle._run (asyncio/events.py"):
            break  # the event loop's callback: the frames below only run the loop
        for name, marks in AREAS:
            if any(mark in frame for mark in marks):
                return name
    return OTHER


def summary(files: list[Path], keys: int, cpu_ms_per_key: float) -> str:
    counts: Counter[str] = Counter()
    startup = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit() or any(mark in stack[-60:] for mark in IDLE):
                continue
            if any(mark in stack for mark in STARTUP):
                startup += int(n)
            else:
                counts[area(stack)] += int(n)
    total = sum(counts.values()) or 1
    rows = ["| area | share of samples | ms per key |", "|---|---:|---:|"]
    for name in [*(a for a, _ in AREAS), OTHER]:
        share = counts[name] / total
        ms = f"{share * cpu_ms_per_key:.1f}" if cpu_ms_per_key else "-"
        rows.append(f"| {name} | {share * 100:.0f} % | {ms} |")
    rows.append(f"| all ({total} samples, {keys} keys) | 100 % | {cpu_ms_per_key or '-'} |")
    rows.append(f"\n(left out: {startup} samples of start-up, before the measured session)")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch")
    w.add_argument("out", type=Path)
    w.add_argument("--rate", type=int, default=100)
    w.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[2])
    s = sub.add_parser("summary")
    s.add_argument("files", type=Path, nargs="+")
    s.add_argument("--keys", type=int, default=0)
    s.add_argument("--cpu-ms-per-key", type=float, default=0.0)
    args = parser.parse_args()
    if args.command == "watch":
        watch(args.out, args.rate, args.checkout)
    else:
        print(summary(args.files, args.keys, args.cpu_ms_per_key))


if __name__ == "__main__":
    main()
