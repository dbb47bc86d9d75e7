"""Progress: the library reports epochs and permutation passes; the CLI draws rich bars on a terminal only."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.unit.test_training import _domain, _lenet
from torchtransfer import progress, transfer_learner
from torchtransfer.shift import permutation_test


class Recorder:
    """A sink that remembers every bar: description, total, units advanced, stopped or not."""

    def __init__(self) -> None:
        self.bars: list[dict] = []
        self.lock = threading.Lock()

    def start(self, description, total):
        with self.lock:
            self.bars.append({"description": description, "total": total, "done": 0, "stopped": False})
            return len(self.bars) - 1

    def advance(self, handle, n):
        self.bars[handle]["done"] += n

    def stop(self, handle):
        self.bars[handle]["stopped"] = True


def test_fit_reports_one_unit_per_epoch_also_when_it_stops_early():
    with progress.using(Recorder()) as seen:
        result = transfer_learner(_lenet(), lr=0.05, device="cpu").fit(_domain(32, 0), epochs=3, batch_size=16)
        stuck = transfer_learner(_lenet(), lr=1e-12, device="cpu")  # val/acc never improves: stops at epoch 2
        early = stuck.fit(_domain(32, 0), epochs=20, val_data=_domain(16, 1), patience=1, batch_size=16)
    assert seen.bars[0] == {"description": "epochs", "total": 3, "done": len(result.history), "stopped": True}
    assert seen.bars[1]["total"] == 20 and seen.bars[1]["done"] == len(early.history) < 20 and seen.bars[1]["stopped"]


def test_permutation_test_reports_every_permutation_over_several_passes():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 5)), rng.normal(size=(60, 5))
    with progress.using(Recorder()) as seen:
        permutation_test(x, y, n_permutations=1000, memory_budget=8 * 120 * 256)  # 256 masks per pass
    (bar,) = seen.bars
    assert (bar["description"], bar["total"], bar["done"], bar["stopped"]) == ("permutations", 1000, 1000, True)


def on_a_terminal(cmd: list[str], timeout: float = 120) -> str:
    """Run ``cmd`` with a pseudo-terminal as stdin, stdout and stderr; return everything it wrote."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=follower, stdout=follower, stderr=follower, cwd=ROOT, close_fds=True,
                            env={**os.environ, "COLUMNS": "120"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=timeout) == 0, b"".join(chunks).decode(errors="replace")[-2000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow  # runs the CLI in a pty subprocess
def test_torchtransfer_shift_draws_a_bar_on_a_terminal_and_none_in_a_log(tmp_path):
    rng = np.random.default_rng(0)
    for name, mean in (("a", 0.0), ("b", 0.3)):
        np.save(tmp_path / f"{name}.npy", rng.normal(mean, size=(400, 16)).astype("float32"))
    cmd = [sys.executable, "-m", "torchtransfer_cli.app", "shift", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"),
           "-B", "3000"]
    shown = on_a_terminal(cmd)
    assert "permutations" in shown and "/3000" in shown and "━" in shown
    logged = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert logged.returncode == 0 and "permutations" not in logged.stdout + logged.stderr
    assert "MMD²" in shown and "MMD²" in logged.stdout  # the same report either way
