"""The config's vocabularies (torchtransfer.names) agree with the modules that implement them, and the CLI and
the config load without torch, scikit-learn, MLflow, Prefect or Optuna (what keeps --help and config errors fast;
the speed itself is measured by benchmarks/cli_timing.py, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT
from torchtransfer import names

HEAVY = ("torch", "sklearn", "mlflow", "prefect", "optuna", "numpy", "scipy", "pandas")


def test_every_vocabulary_matches_its_implementation():
    from torchtransfer import methods
    from torchtransfer.data import datasets
    from torchtransfer.models import zoo
    from torchtransfer.shift import aggregated
    from torchtransfer.train import adaptation, optim, selection, strategies
    from torchtransfer.tune import study, validators

    assert tuple(datasets.LOADERS) == names.DOMAINS
    assert tuple(zoo.BACKBONES) == names.BACKBONES == tuple(zoo.HAS_PRETRAINED_WEIGHTS)
    assert adaptation.METHODS == methods.METHODS and aggregated.TESTS == names.SHIFT_TESTS
    assert set(zoo.INPUT_SIZES) == set(zoo.INPUT_CHANNELS) == set(names.BACKBONES)
    assert (optim.OPTIMIZERS, optim.SCHEDULES) == (names.OPTIMIZERS, names.SCHEDULES)
    assert strategies.STRATEGIES == names.STRATEGIES and study.PRUNERS == names.PRUNERS
    assert selection.OBJECTIVES == names.OBJECTIVES and validators.VALIDATORS == names.VALIDATORS
    for name in names.PRUNERS:
        study.make_pruner(name)  # each name is implemented


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_config_and_the_cli_import_nothing_heavy():
    assert not any(_loaded_after("import torchtransfer.config").values())
    assert not any(_loaded_after("import torchtransfer_cli.app").values())


def test_help_of_every_command_and_a_config_error_import_nothing_heavy(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trian: {epochs: 1}\n")
    code = f"""
from typer.testing import CliRunner
from tests.unit.test_cli import COMMANDS
from torchtransfer_cli.app import app
for command in [(), *COMMANDS]:
    assert CliRunner().invoke(app, [*command, "--help"]).exit_code == 0, command
for command in ("run", "config", "tune-worker"):
    result = CliRunner().invoke(app, [command, "-c", {str(bad)!r}])
    assert result.exit_code == 2 and "trian" in result.output, (command, result.output)
"""
    loaded = _loaded_after(code)
    assert not any(loaded.values()), loaded
