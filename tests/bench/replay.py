"""Replay benchmark: one seeded, real-time editing session, replayed per plugin mode.

Run from the repository root (any venv with the dev dependencies works; the
project's is ``.venv``)::

    .venv/bin/python -m tests.bench.replay                 # all modes, one run
    .venv/bin/python -m tests.bench.replay --quick         # a short smoke run
    .venv/bin/python -m tests.bench.replay --runs 3 --json out.json

Every mode gets the same keys at the same times (see ``trace.py``), a fresh
llama-server (cold cache) on the tiny generated model, a fresh Neovim, and the
same measurement probe (``probe.lua``). Neovim and everything it starts (the
Python host, curl) are pinned to one CPU, llama-server to the other.

Modes: ``none`` (no plugin), ``llama.nvim`` (defaults), ``naive`` (llama.nvim
with the naive request shaping of ``naive.py``, registered from this folder's
own remote-plugin entry, and max_cache_keys 0, speculative off), ``llama.vim`` (the
original Vimscript plugin, from a checkout given by --llama-vim) and any plugin
added with --plugin-init FILE.

This file is not collected by pytest and is not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pynvim

from tests.bench import procs
from tests.bench.proxy import Exchange, LoggingProxy
from tests.bench.trace import TYPE_MS, Session, build_session

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.lua")
SOURCE_DIR = Path(httpx.__file__).parent  # real files of an installed package
SOURCE_FILES = ("_client.py", "_models.py")
DEFAULT_LLAMA_VIM = Path("/tmp/llama.vim")
SETTLE_S = 3.0  # idle time after opening the first file, before measuring
NAIVE = {"max_cache_keys": 0, "speculative": False}
# Where the naive mode's remote-plugin entry lives (rplugin/python3/llama_nvim_naive.py).
NAIVE_RUNTIME = Path(__file__).resolve().parent
TYPING_TAGS = ("type", "indent", "enter")

Figures = dict[str, float | None]


# -- modes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """How to set up Neovim for one measured configuration."""

    name: str
    kind: str  # "none", "llama.nvim" or "vim" (a plugin loaded by an init file)
    namespace: str = "llama_nvim"  # where its ghost text lives
    hint_hls: tuple[str, ...] = ("LlamaNvimHint",)  # highlight groups of suggestion text
    config: dict[str, Any] = field(default_factory=dict)  # llama.nvim's g:llama_config
    runtime: Path = REPO  # for kind "llama.nvim": the folder holding rplugin/python3/<entry>
    init: str = ""  # Vimscript for kind "vim"; {endpoint} is the /infill URL


def llama_vim_mode(checkout: Path) -> Mode:
    init = "\n".join(
        [
            "let g:llama_config = {'endpoint_fim': '{endpoint}'}",
            f"set runtimepath^={checkout}",
        ]
    )
    # llama.vim draws in namespace 'vt_fim'; suggestion text uses llama_hl_fim_hint.
    return Mode("llama.vim", "vim", "vt_fim", ("llama_hl_fim_hint",), init=init)


def plugin_mode(path: Path, namespace: str, hls: str) -> Mode:
    init = f"let g:llama_bench_endpoint = '{{endpoint}}'\nsource {path}"
    hint_hls = tuple(h for h in hls.split(",") if h)
    return Mode(path.stem, "vim", namespace, hint_hls, init=init)


def all_modes(args: argparse.Namespace) -> list[Mode]:
    modes = [
        Mode("none", "none"),
        Mode("llama.nvim", "llama.nvim"),
        Mode("naive", "llama.nvim", config=dict(NAIVE), runtime=NAIVE_RUNTIME),
    ]
    if args.llama_vim.is_dir():
        modes.append(llama_vim_mode(args.llama_vim))
    for path in args.plugin_init:
        modes.append(plugin_mode(path, args.plugin_ns, args.plugin_hl))
    for spec in args.variant:
        name, _, config = spec.partition("=")
        try:
            settings = json.loads(config)
        except ValueError:
            raise SystemExit(f"--variant {spec!r}: not NAME=JSON") from None
        if not name or not isinstance(settings, dict):
            raise SystemExit(f"--variant {spec!r}: not NAME=JSON")
        modes.append(Mode(name, "llama.nvim", config=settings))
    return modes


# -- components ------------------------------------------------------------------------------------


def find_binary(env_var: str, *names: str) -> str:
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    raise SystemExit(f"{' or '.join(names)} not found: run .ci/setup or set {env_var}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for Neovim (and its children) and for llama-server: one each, if we have two."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the block (and the processes it starts) on ``cpus``."""
    if cpus is None:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


class Server:
    """A fresh llama-server (cold cache) with /metrics."""

    def __init__(
        self,
        binary: str,
        model: Path,
        cpus: set[int] | None,
        log: Path,
        extra: Sequence[str],
        *,
        slots: int = 1,
        n_ctx: int = 8192,
    ) -> None:
        self.binary, self.model, self.cpus, self.log = binary, model, cpus, log
        self.extra = list(extra)
        self.slots, self.n_ctx = slots, n_ctx  # -c is shared by the slots: n_ctx / slots each
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        args = [
            self.binary, "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
            "-np", str(self.slots), "-c", str(self.n_ctx), "-b", "1024", "-ub", "1024",
            "--cache-reuse", "256", "-t", "1", "--metrics", "--no-webui", *self.extra,
        ]  # fmt: skip
        with pinned(self.cpus), open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama-server exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("llama-server did not become healthy in 60 s")
            time.sleep(0.05)

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics", timeout=5).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("llamacpp:"):
                name, _, value = line.partition(" ")
                with contextlib.suppress(ValueError):
                    out[name.removeprefix("llamacpp:")] = float(value)
        return out

    def cpu_ms(self) -> float:
        assert self.process is not None
        t = procs.times(self.process.pid)
        return t.own_ms if t else 0.0

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def xdg_env(home: Path, manifest: Path, state_home: Path | None = None) -> dict[str, str]:
    """Neovim's environment in ``home``; ``state_home`` shared by editors (slot leases)."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = home / var.lower()
        if var == "XDG_STATE_HOME" and state_home is not None:
            path = state_home
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env["NVIM_RPLUGIN_MANIFEST"] = str(manifest)
    env["NVIM_LOG_FILE"] = str(home / "nvim.log")
    env["NVIM_PYTHON_LOG_FILE"] = str(home / "python-host")
    env["NVIM_PYTHON_LOG_LEVEL"] = "WARNING"
    return env


def base_init(project: Path) -> list[str]:
    """Settings every mode shares.

    The trace relies on plain 'autoindent' with softtabstop 4: filetype detection
    stays on (plugins see "python") but no indent or ftplugin script runs.
    """
    return [
        "set nocompatible noswapfile shortmess+=I hidden",
        "set autoindent expandtab shiftwidth=4 softtabstop=4",
        "filetype on",
        "filetype plugin indent off",
        f"cd {project}",
        f"luafile {PROBE}",
    ]


def llama_nvim_init(config: dict[str, Any], runtime: Path = REPO) -> list[str]:
    return [
        f"let g:python3_host_prog = {json.dumps(sys.executable)}",
        f"set runtimepath^={runtime}",
        f"let g:llama_config = json_decode({json.dumps(json.dumps(config))})",
    ]


def register_llama_nvim(nvim_bin: str, home: Path, runtime: Path = REPO) -> Path:
    """:UpdateRemotePlugins into a private manifest, as a user would."""
    manifest = home / f"rplugin-{runtime.name}.vim"
    init = home / f"register-{runtime.name}.vim"
    init.write_text("\n".join(["set nocompatible", *llama_nvim_init({}, runtime)]) + "\n")
    subprocess.run(
        [nvim_bin, "--headless", "-u", str(init), "-i", "NONE", "-n",
         "+UpdateRemotePlugins", "+qa!"],
        env=xdg_env(home, manifest), check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    if "/rplugin/python3/llama_nvim_" not in manifest.read_text():
        raise SystemExit(f"registering llama.nvim failed: {manifest.read_text()!r}")
    return manifest


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def make_project(root: Path) -> Path:
    """A temporary project (with a .git folder, so plugins find its root) of real files."""
    project = root / "project"
    (project / ".git").mkdir(parents=True)
    for name in SOURCE_FILES:
        shutil.copyfile(SOURCE_DIR / name, project / name)
    return project


def wait_for(probe: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- one run of one mode ---------------------------------------------------------------------------


@dataclass
class Context:
    """What every mode's run needs."""

    nvim_bin: str
    server_bin: str
    model: Path
    manifests: dict[Path, Path]  # runtime folder -> its private manifest
    work: Path
    session: Session
    nvim_cpus: set[int] | None
    server_cpus: set[int] | None
    verbose: bool
    server_args: tuple[str, ...] = ()
    n_ctx: int = 8192  # llama-server's -c (one slot)


def start_nvim(
    ctx: Context,
    mode: Mode,
    home: Path,
    project: Path,
    endpoint: str,
    state_home: Path | None = None,
) -> Any:
    home.mkdir(parents=True, exist_ok=True)
    lines = base_init(project)
    if mode.kind == "llama.nvim":
        lines += llama_nvim_init({"endpoint": endpoint, **mode.config}, mode.runtime)
        manifest = ctx.manifests[mode.runtime]
    else:
        manifest = home / "no-rplugin.vim"
        if mode.kind == "vim":
            lines.append(mode.init.replace("{endpoint}", endpoint))
    init = home / "init.vim"
    init.write_text("\n".join(lines) + "\n")
    argv = [ctx.nvim_bin, "--embed", "--headless", "-u", str(init), "-i", "NONE", "-n"]
    with environment(xdg_env(home, manifest, state_home)), pinned(ctx.nvim_cpus):
        return pynvim.attach("child", argv=argv)


def close_nvim(nvim: Any) -> None:
    with contextlib.suppress(Exception):
        nvim.command("qa!")
    with contextlib.suppress(Exception):
        nvim.close()


def open_editor(
    ctx: Context,
    mode: Mode,
    home: Path,
    project: Path,
    endpoint: str,
    state_home: Path | None = None,
) -> Any:
    """A Neovim in ``mode``, its plugin ready, the probe set up, the first file open."""
    nvim = start_nvim(ctx, mode, home, project, endpoint, state_home)
    try:
        if mode.kind == "llama.nvim":
            ready = "return package.loaded.llama_nvim ~= nil and require('llama_nvim').is_ready()"
            wait_for(lambda: nvim.exec_lua(ready), 60, "llama.nvim to start")
            wait_for(lambda: nvim.call("LlamaNvimStats").get("n_ctx"), 60, "llama.nvim's /props")
        nvim.exec_lua("LlamaBench.setup(...)", mode.namespace, list(mode.hint_hls))
        nvim.command(f"edit {ctx.session.first_file}")
    except Exception:
        close_nvim(nvim)
        raise
    return nvim


def type_sessions(typists: Sequence[tuple[Any, Session]]) -> tuple[list[list[int]], float]:
    """Send each Neovim its session's keys at their times, all on one clock.

    Returns each Neovim's send times (monotonic ns, the clock of vim.uv.hrtime())
    and the wall time until the longest session's tail has passed.
    """
    events: list[tuple[float, int, str]] = []  # (seconds after start, typist, key)
    tails: list[float] = []
    for index, (_, session) in enumerate(typists):
        due = 0.0
        for step in session.steps:
            due += step.pause_ms / 1000
            events.append((due, index, step.key))
        tails.append(due + session.tail_ms / 1000)
    events.sort(key=lambda event: (event[0], event[1]))
    t_send: list[list[int]] = [[] for _ in typists]
    start = time.monotonic()
    for offset, index, key in events:
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t_send[index].append(time.monotonic_ns())
        typists[index][0].input(key)
    time.sleep(max(0.0, start + max(tails, default=0.0) - time.monotonic()))
    return t_send, time.monotonic() - start


def run_mode(ctx: Context, mode: Mode, run: int) -> tuple[Figures, dict[str, Any]]:
    """Replay the session once in ``mode``; return its figures and raw data."""
    root = Path(tempfile.mkdtemp(prefix=f"{mode.name}-{run}-", dir=ctx.work))
    project = make_project(root)
    server = Server(
        ctx.server_bin,
        ctx.model,
        ctx.server_cpus,
        root / "llama-server.log",
        ctx.server_args,
        n_ctx=ctx.n_ctx,
    )
    proxy: LoggingProxy | None = None
    nvim: Any = None
    try:
        server.start()
        proxy = LoggingProxy(server.port)
        proxy.start()
        endpoint = f"http://127.0.0.1:{proxy.port}/infill"
        nvim = open_editor(ctx, mode, root / "home", project, endpoint)
        pid: int = nvim.call("getpid")
        time.sleep(SETTLE_S)

        session = ctx.session
        tree0, server0 = procs.sample_tree(pid), server.cpu_ms()
        wait0 = procs.runqueue_wait_ms(pid)
        metrics0, n_exchanges0 = server.metrics(), len(proxy.snapshot())
        nvim.exec_lua("return LlamaBench.start()")
        sent, wall = type_sessions([(nvim, session)])
        t_send = sent[0]
        tree1, server1 = procs.sample_tree(pid), server.cpu_ms()
        wait1 = procs.runqueue_wait_ms(pid)
        probe: dict[str, Any] = nvim.exec_lua("return LlamaBench.finish()")
        probe["t_key"] = t_send
        if probe["n"] != len(t_send):
            print(f"  warning: Neovim read {probe['n']} keys of {len(t_send)}", flush=True)
        metrics1 = server.metrics()
        exchanges = proxy.snapshot()[n_exchanges0:]
        stats: dict[str, int] = nvim.call("LlamaNvimStats") if mode.kind == "llama.nvim" else {}
        rss = sum(procs.rss_kb(p) for p in procs.descendants(pid))
        restored = (project / session.second_file).read_text() == (
            SOURCE_DIR / session.second_file
        ).read_text()
    finally:
        if nvim is not None:
            close_nvim(nvim)
        if proxy is not None:
            proxy.stop()
        server.stop()

    figures = compute_figures(
        session,
        probe,
        exchanges,
        stats,
        nvim_ms=tree1.own_ms - tree0.own_ms,
        helper_ms=procs.helper_cpu_between(tree0, tree1),
        server_ms=server1 - server0,
        metrics=(metrics0, metrics1),
        wall_s=wall,
        rss_kb=rss,
        restored=restored,
    )
    figures["nvim_runq_wait_ms"] = wait1 - wait0
    figures["load_avg_1m"] = os.getloadavg()[0]
    by_tag: dict[str, list[float]] = {}
    for step, busy_us, stalls in zip(
        session.steps, probe["key_busy_us"], probe["key_stalls"], strict=False
    ):
        entry = by_tag.setdefault(step.tag, [0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += (busy_us or 0) / 1000
        entry[2] += stalls or 0
    if ctx.verbose:
        print("  per key tag: keys, busy ms, stalls:", json.dumps(by_tag), flush=True)
    raw = {
        "by_tag": by_tag,
        "probe": probe,
        "stats": stats,
        "exchanges": [ex.__dict__ for ex in exchanges],
        "server_log": str(server.log),
    }
    return figures, raw


# -- figures ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _open_at(ex: Exchange, t: float) -> bool:
    """True if ``ex`` was neither answered nor cancelled by ``t`` (monotonic ns)."""
    ended = ex.t_done or ex.t_cancelled
    return not 0 < ended <= t


def _pause_after(session: Session, i: int) -> float:
    """The scripted pause (ms) between key ``i`` and the next one."""
    steps = session.steps
    return steps[i + 1].pause_ms if i + 1 < len(steps) else session.tail_ms


def compute_figures(
    session: Session,
    probe: dict[str, Any],
    exchanges: list[Exchange],
    stats: dict[str, int],
    *,
    nvim_ms: float,
    helper_ms: float,
    server_ms: float,
    metrics: tuple[dict[str, float], dict[str, float]],
    wall_s: float,
    rss_kb: int,
    restored: bool,
) -> Figures:
    keys = len(session.steps)
    n = min(int(probe["n"]), keys)
    t_key: list[float | None] = probe["t_key"]
    t_arrive: list[float | None] = probe["t_arrive"]
    shown_at: list[float | None] = probe["shown_at"]
    after_mode: list[str | None] = probe["after_mode"]
    after_vis: list[bool | None] = probe["after_vis"]

    infill = [ex for ex in exchanges if ex.path.startswith("/infill")]
    answered = [ex for ex in infill if ex.t_done and not ex.cancelled]
    fim_answers = sorted(
        (ex for ex in answered if ex.n_predict != 0 and ex.status == 200), key=lambda e: e.t_done
    )
    fim_requests = sorted((ex for ex in infill if ex.n_predict != 0), key=lambda e: e.t_start)

    insert_keys = [i for i in range(n) if (after_mode[i] or "").startswith("i")]
    visible = [i for i in insert_keys if after_vis[i]]
    # Keys the user pauses after (longer than any gap between typed characters):
    # a server slower than that gap can show a reply there and nowhere else.
    paused = {i for i in insert_keys if _pause_after(session, i) > TYPE_MS[1]}

    handled = [
        (h - k) / 1e6
        for k, h, step in zip(t_key, probe["t_handled"], session.steps, strict=False)
        if k is not None and h is not None and step.tag in TYPING_TAGS
    ]
    latencies: list[float] = []
    remote: list[tuple[float, float]] = []  # (latency, server ms)
    local: list[float] = []
    for i in range(n):
        if session.steps[i].tag not in TYPING_TAGS:
            continue
        key_t, shown = t_key[i], shown_at[i]
        if key_t is None or shown is None or t_arrive[i] is None:
            continue
        latency = (shown - key_t) / 1e6
        latencies.append(latency)
        answers = [ex for ex in fim_answers if key_t < ex.t_done <= shown]
        growing = [
            ex for ex in fim_requests if ex.stream and ex.t_start < shown and _open_at(ex, shown)
        ]
        if answers:
            last = answers[-1]
            server_part = last.server_ms if last.server_ms is not None else last.wall_ms
            remote.append((latency, server_part or 0.0))
        elif growing:
            # Drawn while its reply was still streaming in (a growing suggestion):
            # a server reply's, its server part at most the time it had run.
            remote.append((latency, (shown - growing[-1].t_start) / 1e6))
        else:
            local.append(latency)

    before, after = metrics
    prompt_n = after.get("prompt_tokens_total", 0) - before.get("prompt_tokens_total", 0)
    cached_n = after.get("prompt_tokens_cached_total", 0) - before.get(
        "prompt_tokens_cached_total", 0
    )
    sent = prompt_n + cached_n
    client_parts = [lat - srv for lat, srv in remote]
    server_parts = [srv for _, srv in remote]

    fig: Figures = {
        "keys": keys,
        "keys_read": float(probe["n"]),
        "insert_keys": len(insert_keys),
        "wall_s": wall_s,
        "nvim_cpu_ms": nvim_ms,
        "nvim_ms_per_key": nvim_ms / keys,
        "helper_cpu_ms": helper_ms,
        "helper_ms_per_key": helper_ms / keys,
        "server_cpu_ms": server_ms,
        "stalls": float(probe["stalls"]),
        "stalls_per_1k": 1000 * float(probe["stalls"]) / keys,
        "stalls_gt10_per_1k": 1000 * float(probe["hist"][2]) / keys,
        "stall_ms": float(probe["stall_ms"]),
        "max_gap_ms": float(probe["max_gap_ms"]),
        "busy_per_1k": 1000 * float(probe["busy"]) / keys,
        "busy_ms": float(probe["busy_ms"]),
        "max_busy_ms": float(probe["max_busy_ms"]),
        "infill_requests": len(infill),
        "infill_answered": len(answered),
        "infill_cancelled": sum(1 for ex in infill if ex.cancelled),
        "infill_priming": sum(1 for ex in infill if ex.n_predict == 0),
        "other_requests": len(exchanges) - len(infill),
        "prompt_n": prompt_n,
        "tokens_sent": sent,
        "kv_reuse_pct": 100 * cached_n / sent if sent else None,
        "visible_pct": 100 * len(visible) / len(insert_keys) if insert_keys else None,
        "paused_keys": len(paused),
        "visible_at_pauses": sum(1 for i in visible if i in paused),
        "visible_while_typing": sum(1 for i in visible if i not in paused),
        "typed_keys_shown": len(latencies),
        "handled_p50": percentile(handled, 50),
        "latency_p50": percentile(latencies, 50),
        "latency_p90": percentile(latencies, 90),
        "remote_shown": len(remote),
        "remote_p50": percentile([lat for lat, _ in remote], 50),
        "remote_p90": percentile([lat for lat, _ in remote], 90),
        "remote_client_p50": percentile(client_parts, 50),
        "remote_server_p50": percentile(server_parts, 50),
        "local_shown": len(local),
        "local_p50": percentile(local, 50),
        "local_p90": percentile(local, 90),
        "helper_rss_mb": rss_kb / 1024 if rss_kb else None,
        "file_restored": 1.0 if restored else 0.0,
    }
    for name in (
        "requests",
        "user_requests",
        "cancelled",
        "cache_hits",
        "speculative",
        "speculative_adopted",
        "primes",
        "shown",
        "dropped_stale",
        "dropped_filtered",
    ):
        fig[f"plugin_{name}"] = float(stats[name]) if name in stats else None
    return fig


def add_relative(per_mode: dict[str, Figures]) -> None:
    """Figures minus the no-plugin run: what the plugin itself costs."""
    base = per_mode.get("none")
    for figs in per_mode.values():
        if base is None:
            continue
        for name in (
            "nvim_ms_per_key",
            "helper_ms_per_key",
            "stalls_per_1k",
            "stalls_gt10_per_1k",
            "busy_per_1k",
        ):
            value, zero = figs.get(name), base.get(name)
            figs[f"{name}_added"] = value - zero if value is not None and zero is not None else None
        nvim_added, helper_added = figs["nvim_ms_per_key_added"], figs["helper_ms_per_key_added"]
        both = nvim_added is not None and helper_added is not None
        figs["total_ms_per_key_added"] = (nvim_added or 0) + (helper_added or 0) if both else None


def median_figures(runs: list[dict[str, Figures]]) -> dict[str, Figures]:
    out: dict[str, Figures] = {}
    modes = list(dict.fromkeys(mode for run in runs for mode in run))
    for mode in modes:
        names = list(dict.fromkeys(name for run in runs for name in run.get(mode, {})))
        out[mode] = {}
        for name in names:
            values = [v for r in runs if (v := r.get(mode, {}).get(name)) is not None]
            out[mode][name] = statistics.median(values) if values else None
    return out


# -- report ----------------------------------------------------------------------------------------

ROWS: list[tuple[str, str, str]] = [
    # (figure, label, format)
    ("keys", "keys replayed", "{:.0f}"),
    ("insert_keys", "keys leaving Neovim in insert mode", "{:.0f}"),
    ("wall_s", "session wall time (s)", "{:.1f}"),
    ("nvim_ms_per_key", "Neovim CPU ms / key", "{:.3f}"),
    ("nvim_ms_per_key_added", "  minus no-plugin", "{:+.3f}"),
    ("helper_ms_per_key", "plugin processes CPU ms / key (host, curl)", "{:.3f}"),
    ("total_ms_per_key_added", "total added CPU ms / key (Neovim + helpers)", "{:+.3f}"),
    ("stalls_per_1k", "main-loop stalls > 2 ms / 1000 keys", "{:.1f}"),
    ("stalls_per_1k_added", "  attributable (minus no-plugin)", "{:+.1f}"),
    ("stalls_gt10_per_1k", "stalls > 10 ms / 1000 keys", "{:.1f}"),
    ("max_gap_ms", "longest main-loop gap (ms)", "{:.1f}"),
    ("busy_per_1k", "busy stalls (> 2 ms of Neovim CPU) / 1000 keys", "{:.1f}"),
    ("busy_per_1k_added", "  attributable (minus no-plugin)", "{:+.1f}"),
    ("max_busy_ms", "longest busy stretch (ms of Neovim CPU)", "{:.1f}"),
    ("nvim_runq_wait_ms", "Neovim waiting for its CPU (ms, schedstat)", "{:.0f}"),
    ("load_avg_1m", "machine load average (1 min) at the end", "{:.2f}"),
    ("infill_requests", "/infill requests seen by the server", "{:.0f}"),
    ("infill_cancelled", "  cancelled by the client", "{:.0f}"),
    ("infill_answered", "  answered", "{:.0f}"),
    ("infill_priming", "  priming (n_predict 0)", "{:.0f}"),
    ("plugin_user_requests", "plugin: user requests", "{:.0f}"),
    ("plugin_speculative", "plugin: speculative requests", "{:.0f}"),
    ("plugin_speculative_adopted", "plugin: speculative answers adopted", "{:.0f}"),
    ("plugin_cache_hits", "plugin: answered from client cache", "{:.0f}"),
    ("plugin_cancelled", "plugin: cancelled", "{:.0f}"),
    ("plugin_shown", "plugin: suggestions shown", "{:.0f}"),
    ("local_shown", "typed keys shown without a server reply", "{:.0f}"),
    ("prompt_n", "Σ prompt tokens recomputed (prompt_n)", "{:.0f}"),
    ("tokens_sent", "Σ prompt tokens sent (evaluated)", "{:.0f}"),
    ("kv_reuse_pct", "server KV cache hit ratio %", "{:.1f}"),
    ("server_cpu_ms", "llama-server CPU ms over the session", "{:.0f}"),
    ("visible_pct", "suggestion visible after % of insert keys", "{:.1f}"),
    ("paused_keys", f"  insert keys the user pauses after (> {TYPE_MS[1]:.0f} ms)", "{:.0f}"),
    ("visible_at_pauses", "  visible after one of those", "{:.0f}"),
    ("visible_while_typing", "  visible after a key typed on at once", "{:.0f}"),
    ("handled_p50", "key → key handled p50 ms (floor of the latencies)", "{:.2f}"),
    ("typed_keys_shown", "typed keys followed by ghost text (latency samples)", "{:.0f}"),
    ("latency_p50", "key → ghost text p50 ms (typed keys)", "{:.1f}"),
    ("latency_p90", "key → ghost text p90 ms", "{:.1f}"),
    ("remote_p50", "  via a server reply: p50 ms", "{:.1f}"),
    ("remote_client_p50", "    client part p50 ms", "{:.1f}"),
    ("remote_server_p50", "    server part p50 ms (prompt+predicted)", "{:.1f}"),
    ("local_p50", "  cache / type-through: p50 ms", "{:.2f}"),
    ("local_p90", "  cache / type-through: p90 ms", "{:.2f}"),
    ("helper_rss_mb", "plugin process RSS at end (MB)", "{:.1f}"),
    ("file_restored", "retyped file identical to the original", "{:.0f}"),
]


def fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def table(per_mode: dict[str, Figures]) -> str:
    modes = list(per_mode)
    header = "| figure | " + " | ".join(modes) + " |"
    lines = [header, "|---|" + "---:|" * len(modes)]
    for name, label, pattern in ROWS:
        if all(per_mode[m].get(name) is None for m in modes):
            continue
        cells = [fmt(per_mode[m].get(name), pattern) for m in modes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    what: str
    value: float | None
    goal: str
    met: bool | None  # None: cannot tell (a mode missing, or a ratio undefined)

    def line(self) -> str:
        state = {True: "MET", False: "MISSED", None: "n/a"}[self.met]
        shown = "-" if self.value is None else f"{self.value:.3g}"
        return f"| {self.what} | {shown} | {self.goal} | {state} |"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def targets(per_mode: dict[str, Figures]) -> list[Target]:
    nv, naive, vim = per_mode.get("llama.nvim"), per_mode.get("naive"), per_mode.get("llama.vim")
    out: list[Target] = []

    def at_most(what: str, value: float | None, limit: float, goal: str) -> None:
        out.append(Target(what, value, goal, None if value is None else value <= limit))

    if nv is not None and naive is not None:
        at_most(
            "Σ prompt_n: llama.nvim / naive",
            ratio(nv["prompt_n"], naive["prompt_n"]),
            1 / 3,
            "≤ 0.333",
        )
    if nv is not None and vim is not None:

        def rel(name: str) -> float | None:
            assert nv is not None
            assert vim is not None
            return ratio(nv.get(name), vim.get(name))

        at_most(
            "Neovim CPU added / key: llama.nvim / llama.vim",
            rel("nvim_ms_per_key_added"),
            0.1,
            "≤ 0.1",
        )
        at_most(
            "total added CPU / key (Neovim + helpers): llama.nvim / llama.vim",
            rel("total_ms_per_key_added"),
            0.25,
            "≤ 0.25",
        )
        at_most(
            "stalls > 2 ms attributable to llama.nvim / 1000 keys (wall clock)",
            nv.get("stalls_per_1k_added"),
            0.0,
            "0",
        )
        at_most(
            "busy stalls (> 2 ms of Neovim CPU) attributable to llama.nvim / 1000 keys",
            nv.get("busy_per_1k_added"),
            0.0,
            "0",
        )
        at_most("Σ prompt_n: llama.nvim / llama.vim", rel("prompt_n"), 1 / 3, "≤ 0.333")
        at_most("llama-server CPU: llama.nvim / llama.vim", rel("server_cpu_ms"), 1 / 3, "≤ 0.333")
        vis = rel("visible_pct")
        out.append(
            Target(
                "suggestions visible: llama.nvim / llama.vim",
                vis,
                "≥ 0.9",
                None if vis is None else vis >= 0.9,
            )
        )
        at_most("latency p50: llama.nvim / llama.vim", rel("latency_p50"), 1.0, "≤ 1")
    if nv is not None:
        at_most("llama.nvim cache/type-through render p50 ms", nv.get("local_p50"), 2.0, "≤ 2 ms")
        at_most("llama.nvim cache/type-through render p90 ms", nv.get("local_p90"), 2.0, "≤ 2 ms")
    return out


def targets_table(found: list[Target]) -> str:
    lines = ["| target | value | goal | state |", "|---|---:|---|---|"]
    lines += [t.line() for t in found]
    return "\n".join(lines)


# -- meta ------------------------------------------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return next((line for line in text if "version" in line.lower()), text[0] if text else "?")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _checkout_commit(checkout: Path) -> str:
    head = checkout / ".git" / "HEAD"
    with contextlib.suppress(OSError):
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (checkout / ".git" / ref[5:]).read_text().strip()
        return ref
    return "?"


def meta(ctx: Context, args: argparse.Namespace, modes: list[Mode]) -> dict[str, Any]:
    versions = {}
    for package in ("pynvim", "httpx", "tiktoken"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    info: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "-m", "tests.bench.replay", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nvim": _first_line([ctx.nvim_bin, "--version"]),
        "llama_server": _first_line([ctx.server_bin, "--version"]),
        "server_args": list(ctx.server_args),
        "model": args.model,
        "packages": versions,
        "load_avg_at_start": os.getloadavg(),
        "pinning": {"nvim": sorted(ctx.nvim_cpus or []), "server": sorted(ctx.server_cpus or [])},
        "keys": len(ctx.session.steps),
        "session_s": round(ctx.session.duration_s, 1),
        "seed": args.seed,
        "quick": args.quick,
        "runs": args.runs,
        "modes": [m.name for m in modes],
        "source_files": [str(SOURCE_DIR / name) for name in SOURCE_FILES],
        "region": f"_models.py lines {ctx.session.region_start}.."
        f"{ctx.session.region_start + len(ctx.session.region) - 1}",
    }
    if any(m.name == "llama.vim" for m in modes):
        info["llama_vim_commit"] = _checkout_commit(args.llama_vim)
        info["curl"] = _first_line(["curl", "--version"]).split(" (")[0]
    return info


# -- trace check -----------------------------------------------------------------------------------


def check_trace(ctx: Context) -> None:
    """Type the trace at full speed with no plugin: the file must come back unchanged."""
    root = Path(tempfile.mkdtemp(prefix="trace-check-", dir=ctx.work))
    project = make_project(root)
    nvim = start_nvim(ctx, Mode("none", "none"), root / "home", project, "")
    try:
        nvim.command(f"edit {ctx.session.first_file}")
        for step in ctx.session.steps:
            nvim.input(step.key)
        original = (SOURCE_DIR / ctx.session.second_file).read_text()
        saved = project / ctx.session.second_file
        deadline = time.monotonic() + 10
        while (text := saved.read_text()) != original and time.monotonic() < deadline:
            time.sleep(0.1)
        # The last key switches back to the first file.
        wait_for(lambda: nvim.current.buffer.name.endswith(ctx.session.first_file), 10, "<C-^>")
    finally:
        close_nvim(nvim)
    if text != original:
        import difflib

        diff = difflib.unified_diff(original.split("\n"), text.split("\n"), lineterm="")
        raise SystemExit("the trace does not reproduce the file:\n" + "\n".join(list(diff)[:40]))


# -- main ------------------------------------------------------------------------------------------


def make_context(args: argparse.Namespace, work: Path, runtimes: set[Path]) -> Context:
    """Binaries, the model, registered plugins and the session, as ``args`` ask.

    ``args`` needs: model, seed, quick, server_args, verbose.
    """
    from tests.fixtures.tiny_fim_model import SHAPES, build_model

    nvim_bin = find_binary("LLAMA_NVIM_NVIM", "nvim")
    nvim_cpus, server_cpus = cpu_plan()
    model = build_model(work / f"{args.model}-fim.gguf", shape=SHAPES[args.model])
    home = work / "register"
    home.mkdir()
    manifests = {runtime: register_llama_nvim(nvim_bin, home, runtime) for runtime in runtimes}
    return Context(
        nvim_bin=nvim_bin,
        server_bin=find_binary("LLAMA_NVIM_SERVER", "llama-server", "llama-server-vulkan"),
        model=model,
        manifests=manifests,
        work=work,
        session=build_session(SOURCE_DIR / SOURCE_FILES[1], seed=args.seed, quick=args.quick),
        nvim_cpus=nvim_cpus,
        server_cpus=server_cpus,
        verbose=args.verbose,
        server_args=tuple(shlex.split(args.server_args)),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.replay",
        description="Replay one seeded, real-time editing session per mode against a real "
        "llama-server and report CPU, stalls, requests, server work and latency.",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per mode; figures are medians")
    parser.add_argument("--quick", action="store_true", help="a shorter trace, for a smoke run")
    parser.add_argument(
        "--modes",
        default="",
        help="comma-separated subset of: none, llama.nvim, naive, llama.vim, the names "
        "(file stems) of --plugin-init files and of --variant modes (default: all available)",
    )
    parser.add_argument("--json", type=Path, help="write all figures (and raw data) here")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the pauses")
    parser.add_argument(
        "--llama-vim",
        type=Path,
        default=DEFAULT_LLAMA_VIM,
        help="checkout of ggml-org/llama.vim (mode skipped if absent; default %(default)s)",
    )
    parser.add_argument(
        "--plugin-init",
        type=Path,
        action="append",
        default=[],
        help="an extra mode: a Vimscript file that loads some plugin; it may use "
        "g:llama_bench_endpoint, the /infill URL of the bench's server (repeatable)",
    )
    parser.add_argument(
        "--plugin-ns", default="llama_nvim", help="namespace of --plugin-init's ghost text"
    )
    parser.add_argument(
        "--plugin-hl",
        default="",
        help="comma-separated highlight groups of --plugin-init's suggestion text "
        "(default: any non-blank virtual text in the namespace)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an extra llama.nvim mode with these g:llama_config settings, e.g. "
        "'slow={\"debounce_ms\": 150}' (repeatable; select it with --modes like any mode)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="print the tables of a --json file written earlier, and stop",
    )
    parser.add_argument(
        "--server-args",
        # With the tiny model, this build's CPU flash attention costs ~0.6 ms per
        # token on batches of ~10-60 tokens but ~0.03 on larger ones (measured,
        # see RESULTS.md), which turns server time upside down relative to the
        # tokens computed; without it, server time follows the token counts.
        default="-fa off",
        metavar="ARGS",
        help="more llama-server arguments for every mode (default: '-fa off'; '' for none)",
    )
    parser.add_argument(
        "--model",
        choices=("tiny", "slow"),
        default="tiny",
        help="the generated test model: tiny (a server faster than the typist) or slow "
        "(CPU-bound: a request takes longer than the gap between keys; "
        "tests/fixtures/tiny_fim_model.py gives its shape and measured speed)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--verbose", action="store_true", help="print progress details")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def print_report(result: dict[str, Figures], runs: int, info: dict[str, Any]) -> list[Target]:
    found = targets(result)
    print()
    print(f"median of {runs} run(s); {info.get('cpu')}, nproc {info.get('nproc')}")
    print(table(result))
    print()
    print(targets_table(found))
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        print_report(saved["median"], len(saved["runs"]), saved["meta"])
        return 0
    modes = all_modes(args)
    if args.modes:
        wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
        known = {m.name: m for m in modes}
        missing = [w for w in wanted if w not in known]
        if missing:
            hint = f" (no checkout at {args.llama_vim})" if "llama.vim" in missing else ""
            raise SystemExit(f"unknown or unavailable modes: {', '.join(missing)}{hint}")
        modes = [known[w] for w in wanted]
    elif not args.llama_vim.is_dir():
        print(f"note: no llama.vim checkout at {args.llama_vim}; skipping that mode", flush=True)
    if any(m.name == "llama.vim" for m in modes) and shutil.which("curl") is None:
        raise SystemExit("llama.vim needs curl: apt-get install curl")

    work = Path(tempfile.mkdtemp(prefix="llama-nvim-bench-"))
    ctx = make_context(args, work, {m.runtime for m in modes if m.kind == "llama.nvim"})
    session = ctx.session
    info = meta(ctx, args, modes)
    print(
        f"{len(session.steps)} keys, {session.duration_s:.0f} s per session; modes: "
        f"{', '.join(m.name for m in modes)}; runs: {args.runs}; work dir {work}",
        flush=True,
    )
    check_trace(ctx)

    runs: list[dict[str, Figures]] = []
    raw: list[dict[str, Any]] = []
    try:
        for run in range(1, args.runs + 1):
            per_mode: dict[str, Figures] = {}
            for mode in modes:
                print(f"run {run}/{args.runs}: {mode.name} ...", flush=True)
                try:
                    figures, data = run_mode(ctx, mode, run)
                except Exception:  # one broken mode must not lose the others' figures
                    traceback.print_exc()
                    print(f"run {run}: mode {mode.name} failed; left out", flush=True)
                    continue
                per_mode[mode.name] = figures
                raw.append({"run": run, "mode": mode.name, **data})
                if args.verbose:
                    print(json.dumps(figures, indent=1), flush=True)
            add_relative(per_mode)
            runs.append(per_mode)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    result = median_figures(runs)
    found = print_report(result, args.runs, info)
    if args.json:
        payload = {
            "meta": info,
            "median": result,
            "runs": runs,
            "targets": [t.__dict__ for t in found],
            "raw": raw,
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
