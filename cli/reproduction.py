"""Reproduce a recorded run: re-run it in a sandbox (temporary MLflow store and Optuna study) and compare.

- ``final``: the search space is pinned to the recorded best hyperparameters (one trial), then the flow
  fine-tunes and evaluates as before.
- ``full``: the whole flow again, tuning included, on a fresh study.
Content-keyed caches (prepared data, source model) are shared with the original: they are keyed by what
produced them, so a hit is the same result.

Nothing is written to the user's stores: ``$MLFLOW_TRACKING_URI`` (and ``$MLFLOW_REGISTRY_URI``) outrank a
config's ``tracking.uri``, so for the re-run they point at the sandbox (``sandbox_stores``); the original run
is read through a client bound to the user's URI before and after.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from mlflow import MlflowClient

from torchtransfer import keys
from torchtransfer.config import ExperimentConfig, FloatRange, IntRange, SearchConfig

COMPARED = (keys.SHIFT_MMD2, keys.SHIFT_P_VALUE, keys.TUNING_BEST_VALUE, keys.TARGET_ACC, keys.TARGET_MACRO_F1,
            keys.SOURCE_ACC, keys.BASELINE_TARGET_ACC, keys.GAIN)
PROVENANCE = {"git.commit": "code", "git.dirty": "code", keys.DATA_FINGERPRINT: "data", "env.torch": "environment",
              "env.device": "environment"}


@dataclass(frozen=True)
class Row:
    name: str
    original: str
    reproduced: str
    ok: bool


@dataclass(frozen=True)
class Report:
    original_run: str
    reproduced_run: str
    mode: str
    rows: tuple[Row, ...]
    warnings: tuple[str, ...]

    @property
    def matches(self) -> bool:
        return all(row.ok for row in self.rows)


def recorded_config(client: MlflowClient, run_id: str) -> ExperimentConfig:
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "config/resolved.yaml", tmp)
        return ExperimentConfig.model_validate(yaml.safe_load(Path(path).read_text()))


def pinned_search(space: SearchConfig, params: dict[str, str]) -> SearchConfig:
    """The search space reduced to the recorded ``hp.*`` point, so the one trial asks nothing."""
    update = {}
    for name in SearchConfig.model_fields:
        raw = params.get(f"hp.{name}")
        if raw is None:
            continue
        current = getattr(space, name)
        if isinstance(current, FloatRange):
            update[name] = FloatRange(low=float(raw), high=float(raw))
        elif isinstance(current, IntRange):
            update[name] = IntRange(low=int(raw), high=int(raw))
        elif isinstance(current, tuple):
            update[name] = (raw,)
    return space.model_copy(update=update)


def sandboxed(cfg: ExperimentConfig, workdir: Path, mode: str, params: dict[str, str]) -> ExperimentConfig:
    update: dict = {
        "tracking": cfg.tracking.model_copy(update={"uri": f"sqlite:///{workdir / 'mlflow.db'}"}),
        "tuning": cfg.tuning.model_copy(update={"storage": f"sqlite:///{workdir / 'optuna.db'}", "n_workers": 1,
                                                "dask_address": None, **({"n_trials": 1} if mode == "final" else {})}),
    }
    if mode == "final":
        update["search"] = pinned_search(cfg.search, params)
    return cfg.model_copy(update=update)


@contextmanager
def sandbox_stores(uri: str) -> Iterator[None]:
    """MLflow tracking and registry pointed at ``uri`` for a block (environment variables and MLflow's module
    settings alike, all of which outrank a config's ``tracking.uri``), then put back exactly as they were."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved_env = {name: os.environ.get(name) for name in names}
    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    os.environ.update(dict.fromkeys(names, uri))
    tracking_utils._tracking_uri, registry_utils._registry_uri = uri, uri
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def provenance_warnings(original_tags: dict[str, str], again_tags: dict[str, str], old_requirements: str,
                        new_requirements: str) -> list[str]:
    """What differs between the record and the re-run in code, data or environment (tags, requirements)."""
    out = []
    for tag, what in PROVENANCE.items():
        a, b = original_tags.get(tag), again_tags.get(tag)
        if a != b:
            out.append(f"{what} differs from the record: {tag} {a} → {b}")
    diff = difflib.unified_diff(old_requirements.splitlines(), new_requirements.splitlines(), lineterm="", n=0)
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    if changed:
        out.append(f"environment differs from the record: {len(changed)} changed requirement lines, e.g. {changed[:4]}")
    return out


def _warnings(client: MlflowClient, original, again, again_client: MlflowClient) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(client.download_artifacts(original.info.run_id, "environment/requirements.txt", tmp))
        (Path(tmp) / "new").mkdir()
        new = Path(again_client.download_artifacts(again.info.run_id, "environment/requirements.txt", f"{tmp}/new"))
        return provenance_warnings(original.data.tags, again.data.tags, old.read_text(), new.read_text())


def compare(original, again, tolerance: float) -> list[Row]:
    rows = []
    for key in COMPARED:
        a, b = original.data.metrics.get(key), again.data.metrics.get(key)
        if a is None and b is None:
            continue
        ok = a is not None and b is not None and abs(a - b) <= tolerance
        rows.append(Row(key, "-" if a is None else f"{a:.6f}", "-" if b is None else f"{b:.6f}", ok))
    for tag in ("model.sha256",):
        a, b = original.data.tags.get(tag, "-"), again.data.tags.get(tag, "-")
        rows.append(Row(tag, a[:16], b[:16], a == b or tolerance > 0))
    return rows


def reproduce(run_id: str, tracking_uri: str, mode: Literal["final", "full"] = "final", tolerance: float = 0.0,
              workdir: Path | None = None) -> Report:
    """Re-run ``run_id`` and compare its metrics (and, at zero tolerance, its weights' sha256)."""
    from torchtransfer_flows.transfer import transfer_learning

    client = MlflowClient(tracking_uri)
    original = client.get_run(run_id)
    cfg = recorded_config(client, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = sandboxed(cfg, workdir or Path(tmp), mode, original.data.params)
        with sandbox_stores(sandbox.tracking.uri):
            summary = transfer_learning(sandbox)
        again_client = MlflowClient(sandbox.tracking.uri)
        again = again_client.get_run(summary.run_id)
        warnings = _warnings(client, original, again, again_client)
        return Report(run_id, summary.run_id, mode, tuple(compare(original, again, tolerance)), tuple(warnings))
