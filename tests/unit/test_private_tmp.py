"""Two writers of one cache entry never share a temporary file (two flows at once preparing the same split)."""

import threading
from pathlib import Path

import torch

from torchtransfer.data.datasets import Domain
from torchtransfer.data.splits import SPLITS, DomainPair
from torchtransfer.locking import private_tmp


def test_private_tmp_differs_per_thread_and_sits_beside_the_target(tmp_path: Path):
    names, together = [], threading.Barrier(2)  # both alive at once (an ended thread's id may be reused)

    def name() -> None:
        names.append(private_tmp(tmp_path / "a.pt"))
        together.wait()

    threads = [threading.Thread(target=name) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 2 and all(n.parent == tmp_path and n.name.startswith("a.pt.") for n in names)


def test_concurrent_saves_of_the_same_pair_all_succeed(tmp_path: Path):
    part = Domain("d", torch.zeros(4, 1, 28, 28), torch.arange(4))
    pair = DomainPair(**dict.fromkeys(SPLITS, part), fingerprint="f", classes=("0", "1", "2", "3"))
    errors: list[BaseException] = []

    def save() -> None:
        try:
            for _ in range(20):
                pair.save(tmp_path / "prepared" / "p.pt")
        except BaseException as exc:  # noqa: BLE001 — collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and DomainPair.load(tmp_path / "prepared" / "p.pt").fingerprint == "f"
    assert [p.name for p in (tmp_path / "prepared").iterdir()] == ["p.pt"]  # no temporary file left
