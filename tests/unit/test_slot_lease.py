"""The slot lease: each editor of this machine its own llama-server slot, or the server's choice."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llama_nvim.slot_lease import SERVER_CHOOSES, SlotChoice, SlotLease, lease_dir

Leases = Callable[..., SlotLease]


@pytest.fixture
def lease(tmp_path: Path) -> Iterator[Leases]:
    """Makes leases on ``tmp_path`` (or a given folder), each an editor; all released at the end."""
    made: list[SlotLease] = []

    def make(directory: str = str(tmp_path)) -> SlotLease:
        made.append(SlotLease(directory))
        return made[-1]

    yield make
    for each in made:
        each.release()


def test_editors_take_the_lowest_free_slots_in_turn(lease: Leases) -> None:
    first, second = lease(), lease()
    assert first.acquire(2) == 0
    assert second.acquire(2) == 1


def test_no_slot_when_every_slot_is_held(lease: Leases) -> None:
    holders = [lease() for _ in range(2)]
    assert [h.acquire(2) for h in holders] == [0, 1]
    assert lease().acquire(2) is None


def test_a_released_slot_goes_to_the_next_editor(lease: Leases) -> None:
    first, second, third = (lease() for _ in range(3))
    first.acquire(2)
    second.acquire(2)
    first.release()
    assert first.slot is None
    assert third.acquire(2) == 0


def test_acquiring_again_keeps_the_slot_held(lease: Leases) -> None:
    first, second = lease(), lease()
    assert first.acquire(3) == 0
    assert first.acquire(3) == 0
    assert second.acquire(3) == 1


def test_a_slot_beyond_a_smaller_server_is_given_up(lease: Leases) -> None:
    first, second = lease(), lease()
    first.acquire(2)
    assert second.acquire(2) == 1
    first.release()
    # The server restarted with one slot: slot 1 no longer exists.
    assert second.acquire(1) == 0


def test_the_slot_of_an_editor_that_died_is_free(tmp_path: Path, lease: Leases) -> None:
    # A real process takes slot 0 and is killed without releasing anything.
    holder = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from llama_nvim.slot_lease import SlotLease;"
        "lease = SlotLease(sys.argv[1]); print(lease.acquire(2), flush=True); sys.stdin.read()"
    )
    repo = str(Path(__file__).resolve().parents[2])
    with subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path), repo],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "0"
            assert lease().acquire(1) is None
        finally:
            process.kill()
    assert lease().acquire(1) == 0


def test_no_lease_when_the_folder_cannot_be_made(tmp_path: Path, lease: Leases) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert lease(str(blocker / "slots")).acquire(2) is None


def test_each_server_has_its_own_folder(tmp_path: Path, lease: Leases) -> None:
    a = lease_dir(str(tmp_path), "http://127.0.0.1:8012")
    b = lease_dir(str(tmp_path), "http://127.0.0.1:8013")
    assert a != b
    assert a.startswith(str(tmp_path))
    assert lease(a).acquire(1) == 0
    assert lease(b).acquire(1) == 0


def test_choice_leases_a_slot_when_the_server_has_several(lease: Leases) -> None:
    other = lease()
    other.acquire(2)
    choice = SlotChoice(SERVER_CHOOSES, lease())
    assert choice.learned(2) == 1
    assert choice.describe() == "1 (leased, of 2)"


def test_choice_leaves_it_to_the_server_with_one_slot_or_unknown(lease: Leases) -> None:
    choice = SlotChoice(SERVER_CHOOSES, lease())
    assert choice.learned(1) == SERVER_CHOOSES
    assert choice.describe() == "server chooses (one slot)"
    assert choice.learned(0) == SERVER_CHOOSES
    assert choice.describe() == "server chooses (slots unknown)"
    # Nothing was held: another editor gets slot 0.
    assert lease().acquire(2) == 0


def test_choice_leaves_it_to_the_server_when_all_are_leased(lease: Leases) -> None:
    for _ in range(2):
        lease().acquire(2)
    choice = SlotChoice(SERVER_CHOOSES, lease())
    assert choice.learned(2) == SERVER_CHOOSES
    assert "all 2 slots leased" in choice.describe()


def test_the_users_slot_wins_and_takes_no_lease(lease: Leases) -> None:
    choice = SlotChoice(3, lease())
    assert choice.learned(4) == 3
    assert choice.describe() == "3 (set in g:llama_config.id_slot)"
    assert lease().acquire(4) == 0


def test_without_a_lease_the_server_chooses() -> None:
    choice = SlotChoice(SERVER_CHOOSES, None)
    assert choice.learned(4) == SERVER_CHOOSES


def test_release_gives_the_slot_back(lease: Leases) -> None:
    choice = SlotChoice(SERVER_CHOOSES, lease())
    assert choice.learned(2) == 0
    choice.release()
    assert choice.id_slot == SERVER_CHOOSES
    assert lease().acquire(2) == 0
