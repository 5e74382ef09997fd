"""One llama-server slot per editor: a lease among the Neovims of this machine.

A server started with ``-np N`` has N slots, each with a KV cache of its own.
Left to choose (``id_slot`` -1), the server sends a request to the idle slot
whose cache shares the longest prefix with the prompt. Two editors in one
project send the same extra context at the front of every prompt, so both land
in one slot and each request throws away the other editor's local context.

The lease: one lock file per slot and server under the state directory; an
editor holds an exclusive ``flock`` on the lowest free one for as long as it
runs and pins its requests to that slot. The kernel drops the lock when the
process ends, however it ends, so a crashed editor never keeps a slot.
Without a lease (one slot, slots unknown, all leased, no ``flock``) requests
go out with -1, as before.
"""

from __future__ import annotations

import hashlib
import os
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no flock; the server chooses
    fcntl = None  # type: ignore[assignment]

SERVER_CHOOSES = -1


def lease_dir(state_dir: str, server: str) -> str:
    """The folder of ``server``'s slot leases (one per server URL)."""
    digest = hashlib.sha256(server.encode("utf-8")).hexdigest()[:16]
    return os.path.join(state_dir, "llama_nvim_slots", digest)


class SlotLease:
    """Holds at most one slot of one server, through a lock file in ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.slot: int | None = None
        self._file: IO[bytes] | None = None

    def acquire(self, total_slots: int) -> int | None:
        """The lowest slot below ``total_slots`` no live editor holds, now held; None if none."""
        if self.slot is not None and self.slot < total_slots:
            return self.slot
        self.release()
        if fcntl is None:
            return None
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError:
            return None
        for slot in range(total_slots):
            if self._try(slot):
                self.slot = slot
                return slot
        return None

    def _try(self, slot: int) -> bool:
        assert fcntl is not None
        path = os.path.join(self.directory, f"slot-{slot}.lock")
        try:
            # Opening never truncates: the file of a slot someone holds stays as it is.
            file = open(path, "ab")  # noqa: SIM115 - held open for the lease's lifetime
        except OSError:
            return False
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.close()
            return False
        self._file = file
        return True

    def release(self) -> None:
        """Give the slot back (closing the file drops the lock)."""
        if self._file is not None:
            self._file.close()
        self._file = None
        self.slot = None


class SlotChoice:
    """Which ``id_slot`` requests carry: the user's, a leased one, or the server's choice."""

    def __init__(self, configured: int, lease: SlotLease | None) -> None:
        self.configured = configured
        self.lease = lease
        self.id_slot = configured
        if configured == SERVER_CHOOSES:
            self._why = "server chooses (slots not known yet)"
        else:
            self._why = "set in g:llama_config.id_slot"

    def learned(self, total_slots: int) -> int:
        """The server has ``total_slots`` slots (0: unknown): the id_slot to send from now on."""
        if self.configured != SERVER_CHOOSES:
            return self.id_slot
        if total_slots < 2:
            self._drop(f"server chooses ({'one slot' if total_slots == 1 else 'slots unknown'})")
        elif self.lease is None:
            self._drop("server chooses (no lease)")
        else:
            slot = self.lease.acquire(total_slots)
            if slot is None:
                self._drop(f"server chooses (all {total_slots} slots leased by other editors)")
            else:
                self.id_slot = slot
                self._why = f"leased, of {total_slots}"
        return self.id_slot

    def _drop(self, why: str) -> None:
        if self.lease is not None:
            self.lease.release()
        self.id_slot = SERVER_CHOOSES
        self._why = why

    def release(self) -> None:
        """The engine stops: give a leased slot back for another editor."""
        if self.lease is not None:
            self.lease.release()
        if self.configured == SERVER_CHOOSES:
            self.id_slot = SERVER_CHOOSES

    def describe(self) -> str:
        """For :LlamaStatus, e.g. '1 (leased, of 2)' or 'server chooses (one slot)'."""
        if self.id_slot == SERVER_CHOOSES:
            return self._why
        return f"{self.id_slot} ({self._why})"
