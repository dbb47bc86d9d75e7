"""`torchtransfer run` on a terminal: a bar for every long stage, named after what it is for."""

from __future__ import annotations

import os
import re
import sys

import pytest

from tests.unit.test_progress import on_a_terminal

BAR = re.compile(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] (.+?)\s*━")


@pytest.mark.slow
def test_run_on_a_terminal_shows_named_bars_for_data_training_shift_and_trials(cache_dir, tmp_path, monkeypatch):
    for name in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):  # its own temporary Prefect server and stores
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    cmd = [sys.executable, "-m", "torchtransfer_cli.app", "run", "-c", "conf/default.yaml", "-c", "conf/smoke.yaml",
           "--set", f"cache_dir={cache_dir}", "--set", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
           "--set", f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}", "--set", "device=cpu"]
    shown = on_a_terminal(cmd, timeout=600)
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", shown).replace("\r", "\n")
    bars = {m.group(1) for m in BAR.finditer(plain)}
    assert {"source model · epochs", "shift on pixels · permutations", "shift on features · permutations",
            "trial 0 · epochs", "trial 1 · epochs", "final model · epochs",
            "shift on adapted features · permutations"} <= bars, bars
    assert any(b.startswith("trials of smoke-") for b in bars), bars
    assert "tuned target acc" in plain and os.path.exists(tmp_path / "mlflow.db")
