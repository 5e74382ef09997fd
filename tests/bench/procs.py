"""Process CPU time and memory from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Times:
    """CPU of one process, in ms: its own, and that of its reaped children."""

    own_ms: float
    children_ms: float


def times(pid: int) -> Times | None:
    """utime+stime and cutime+cstime of ``pid``; None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return Times((utime + stime) * _TICK_MS, (cutime + cstime) * _TICK_MS)


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (children, their children, ...)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _ppid(int(entry))
            if ppid is not None:
                parents[int(entry)] = ppid
    found: list[int] = []
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        children -= set(found)
        found.extend(sorted(children))
        frontier = children
    return found


@dataclass(frozen=True)
class TreeSample:
    """CPU of a process and of everything below it, at one moment."""

    own_ms: float
    reaped_ms: float  # the root's cutime+cstime: children that exited and were waited for
    helpers: dict[int, float]  # live descendant -> its own + its reaped children's CPU


def sample_tree(pid: int) -> TreeSample:
    root = times(pid)
    if root is None:
        raise RuntimeError(f"process {pid} is gone")
    helpers: dict[int, float] = {}
    for child in descendants(pid):
        t = times(child)
        if t is not None:
            helpers[child] = t.own_ms + t.children_ms
    return TreeSample(root.own_ms, root.children_ms, helpers)


def helper_cpu_between(before: TreeSample, after: TreeSample) -> float:
    """CPU used by all descendants between two samples, exited ones included.

    A helper alive at both samples counts its difference; one that exited in
    between shows up in the root's reaped time with its whole life, so its
    part before the first sample is taken off again.
    """
    total = after.reaped_ms - before.reaped_ms
    for pid, ms in after.helpers.items():
        total += ms - before.helpers.get(pid, 0.0)
    for pid, ms in before.helpers.items():
        if pid not in after.helpers:
            total -= ms
    return total


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 if unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def runqueue_wait_ms(pid: int) -> float:
    """Time ``pid`` spent runnable but waiting for a CPU (schedstat), in ms."""
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) / 1e6 if len(fields) > 1 else 0.0


def tcp_inode(table: str, local_port: int, remote_port: int) -> int | None:
    """The socket inode of the TCP connection ``local_port`` → ``remote_port``.

    ``table`` is the text of /proc/net/tcp; a socket without an inode (one in
    TIME_WAIT, owned by no process any more) does not count.
    """
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if inode and _hex_port(local) == local_port and _hex_port(remote) == remote_port:
            return inode
    return None


def _hex_port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def socket_pid(local_port: int, remote_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the connection ``local_port`` → ``remote_port`` (IPv4)."""
    try:
        inode = tcp_inode(Path("/proc/net/tcp").read_text(), local_port, remote_port)
    except OSError:
        return None
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None
