"""MLflow registry I/O: the servable pyfunc model, idempotent registration, aliases and the promotion history.

This is the one library module whose job is MLflow I/O (the gate itself, ``promotion.py``, stays pure).

- The logged model is a ``mlflow.pyfunc.PythonModel`` around a ``ServableModel`` (preprocessing inside), saved
  as a weights-only file plus this package's code, so ``mlflow.pyfunc.load_model("models:/NAME@champion")``
  works in a fresh process and under ``mlflow models serve``.
- A version is identified by its run: registering a run that already has a complete version returns it; one
  left half-done (no ``torchtransfer.complete`` tag, set after the promotion decision is recorded) is finished
  and gated again; a failure while tagging a new version deletes it.
- MLflow keeps no alias history, so every decision is one registered-model tag
  ``torchtransfer.history.<UTC time>-<random>`` holding a JSON entry: an append never rewrites earlier entries
  (no read-modify-write race, no tag-size limit on the history), and the history survives deleted versions.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel
from torch import nn

from torchtransfer import keys
from torchtransfer.registry.history import append_history
from torchtransfer.registry.promotion import Scored
from torchtransfer.registry.serving import ServableModel, model_inputs

log = logging.getLogger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"
COMPLETE_TAG = "torchtransfer.complete"
INPUT_DOC = ("an image folder or file path, a list of them, or images as a numpy array: dtype uint8 (0..255) or "
             "float (values in [0, 1]); shape (N, H, W) or (N, C, H, W) with C = 1 or 3, any H×W and mode (resized "
             "inside). REST: {\"inputs\": <nested lists or path strings>} or a dataframe with a 'path' column.")


class ServablePyfunc(PythonModel):
    """pyfunc face of a ``ServableModel``: ``predict(images)`` → DataFrame ``label`` (the index), ``class`` (its
    name) and ``prob_<class>`` per class, after a ``path`` column when paths were given (``model_inputs``)."""

    def load_context(self, context) -> None:
        self.module = ServableModel.load(Path(context.artifacts["servable"]))

    def predict(self, context, model_input: np.ndarray, params: dict[str, Any] | None = None) -> pd.DataFrame:
        # model_input: an image array, or paths (the hint stays np.ndarray: MLflow warns on a looser one)
        paths, batch = model_inputs(self.module, model_input)
        probs, labels = self.module.predict(batch)
        columns = {f"prob_{c}": probs[:, i] for i, c in enumerate(self.module.class_names)}
        names = np.asarray(self.module.class_names, dtype=object)
        first = {} if paths is None else {"path": paths}
        return pd.DataFrame({**first, "label": labels, "class": names[labels] if len(labels) else [], **columns})


def pip_requirements() -> list[str]:
    return [f"{dist}=={metadata.version(dist)}" for dist in ("mlflow", "torch", "numpy", "pandas")]


def _signature(class_names: list[str]):
    """Outputs only: MLflow's tensor signatures fix one dtype and one rank and enforce them before the model
    runs, which would reject the uint8 or (N, H, W) batches this model accepts; the input is documented in
    the model's metadata (``input``) and by the input example instead."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    outputs = [ColSpec("long", "label"), ColSpec("string", "class")]
    outputs += [ColSpec("float", f"prob_{c}") for c in class_names]
    return ModelSignature(inputs=None, outputs=Schema(outputs))


@contextmanager
def tracking(uri: str):
    """Point MLflow's fluent API (``log_model``, ``pyfunc.load_model``) at ``uri`` for a block, then restore.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, which would outlive the block and win over
    every later config's ``tracking.uri``; both the module setting and the variable are put back as they were.
    """
    from mlflow.tracking._tracking_service import utils

    previous, env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # None also removes the variable
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


def log_servable(tracking_uri: str, run_id: str, servable: ServableModel, example: np.ndarray) -> str:
    """Log ``servable`` as ``model`` on run ``run_id``; returns the ``models:/m-...`` URI."""
    meta = {"input": INPUT_DOC, "backbone": servable.backbone_name, "input_size": servable.input_size,
            "in_channels": servable.in_channels, "class_names": list(servable.class_names), "resize": servable.resize}
    status = MlflowClient(tracking_uri).get_run(run_id).info.status
    with TemporaryDirectory() as tmp, tracking(tracking_uri), mlflow.start_run(run_id=run_id, nested=True):
        path = servable.save(Path(tmp) / "servable.pt")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=ServablePyfunc(), artifacts={"servable": str(path)},
            code_paths=[str(Path(__file__).parent)], pip_requirements=pip_requirements(),
            signature=_signature(list(servable.class_names)), input_example=example, metadata=meta)
    if status == "RUNNING":  # leaving start_run() ended the run; the flow still owns it
        MlflowClient(tracking_uri).update_run(run_id, status="RUNNING")
    return info.model_uri


def find_version(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The version registered from ``run_id`` (tag ``run_id``), or None."""
    found = client.search_model_versions(f"name = '{name}' and tags.run_id = '{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def register(client: MlflowClient, name: str, run_id: str, model_uri_fn, tags: dict[str, str]
             ) -> tuple[ModelVersion, str]:
    """The run's version with ``tags`` and alias ``challenger``, and how: ``created``, ``finished`` (an
    incomplete version of this run completed now) or ``existing`` (complete already; nothing written).
    A version is complete once its promotion decision is recorded too (``mark_complete``).

    ``model_uri_fn()`` logs the model and is only called when the run has no version yet. A version that an
    earlier, interrupted attempt left incomplete is finished; if finishing a new version fails, it is deleted.
    """
    existing = find_version(client, name, run_id)
    if existing is not None and existing.tags.get(COMPLETE_TAG) == "true":
        return client.get_model_version(name, existing.version), "existing"  # search results carry no aliases
    if existing is None:
        _ensure_registered_model(client, name)
        uri = model_uri_fn()
        with tracking(client.tracking_uri):  # the SQL registry looks the logged model up via the global URI
            version = client.create_model_version(name, uri, run_id=run_id, tags={"run_id": run_id},
                                                  model_id=uri.removeprefix("models:/"))
        created = True
    else:
        version, created = existing, False
    try:
        for key, value in {**tags, "run_id": run_id}.items():
            client.set_model_version_tag(name, version.version, key, value)
        client.set_registered_model_alias(name, CHALLENGER, version.version)
    except Exception:
        if created:
            log.error("registering %s v%s failed half-way; deleting the version", name, version.version)
            _delete_quietly(client, name, version.version)
        raise
    return client.get_model_version(name, version.version), "created" if created else "finished"


def remove_abandoned(client: MlflowClient, name: str, current_run: str, grace_s: float) -> list[str]:
    """Delete versions that a killed registration left incomplete (no ``torchtransfer.complete`` tag) once
    they are ``grace_s`` old, or at once when their run has ended; each removal is recorded in the history.
    The current run's own version is left to ``register``, which finishes it."""
    removed = []
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return removed
    now_ms = datetime.now(UTC).timestamp() * 1000
    for version in versions:
        if version.tags.get(COMPLETE_TAG) == "true" or version.run_id == current_run:
            continue
        age_s = (now_ms - version.creation_timestamp) / 1000
        ended = _run_status(client, version.run_id) not in ("RUNNING", "SCHEDULED")
        if ended or age_s >= grace_s:
            client.delete_model_version(name, version.version)
            append_history(client, name, {"kind": "cleanup", "alias": None, "version": str(version.version),
                                          "run_id": version.run_id, "promote": False, "from": None, "to": None,
                                          "reason": f"v{version.version} was left incomplete by an interrupted "
                                                    f"registration ({age_s:.0f} s old); removed"})
            removed.append(str(version.version))
    return removed


def _run_status(client: MlflowClient, run_id: str | None) -> str:
    try:
        return client.get_run(run_id).info.status if run_id else "UNKNOWN"
    except MlflowException:
        return "DELETED"


def mark_complete(client: MlflowClient, name: str, version: str) -> None:
    """The last write for a version: tags, alias and its promotion decision are all in place."""
    client.set_model_version_tag(name, version, COMPLETE_TAG, "true")


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description="torchtransfer: aliases challenger and champion; "
                                                              "promotion history in torchtransfer.history.* tags")
        except MlflowException as exc:  # created concurrently
            if "already exists" not in str(exc).lower():
                raise


def _delete_quietly(client: MlflowClient, name: str, version: str) -> None:
    try:
        client.delete_model_version(name, version)
    except Exception:  # the store is what failed; say so, keep the original error
        log.exception("could not delete the half-registered %s v%s; delete it by hand", name, version)


def score_version(client: MlflowClient, tracking_uri: str, name: str, version: ModelVersion,
                  fingerprint: str, x, y) -> Scored:
    """``version``'s target accuracy on the test split with ``fingerprint`` (images ``x`` (N, C, H, W), labels
    ``y`` (N,)): its own tags when it was evaluated on that split, else a cached re-evaluation tag, else it is
    loaded from the registry and evaluated now (and the result cached as tag ``test.target_acc.on.<fp16>``).
    When it cannot be loaded, the score on its own data comes back with a note saying why."""
    tags, v = version.tags, str(version.version)
    acc_tag = keys.as_tag(keys.TARGET_ACC)
    own = float(tags[acc_tag]) if acc_tag in tags else None
    if tags.get(keys.TEST_FINGERPRINT) == fingerprint:
        return Scored(v, own, fingerprint)
    cache_key = f"{acc_tag}.on.{fingerprint[:16]}"
    if cache_key in tags:
        return Scored(v, float(tags[cache_key]), fingerprint, "re-evaluated earlier on this test split")
    try:
        labels = predict_uri(tracking_uri, f"models:/{name}/{v}", np.asarray(x))["label"].to_numpy()
        acc = float((labels == np.asarray(y)).mean())
    except Exception as exc:  # an old or broken version: the gate will say it cannot compare
        log.warning("could not re-evaluate %s v%s on the challenger's test split: %s", name, v, exc)
        return Scored(v, own, tags.get(keys.TEST_FINGERPRINT), f"re-evaluation failed: {type(exc).__name__}: {exc}")
    client.set_model_version_tag(name, v, cache_key, f"{acc:.6f}")
    return Scored(v, acc, fingerprint, f"re-evaluated on the challenger's test split (was {own} on "
                                       f"{str(tags.get(keys.TEST_FINGERPRINT))[:12]})")


def load_servable(model_uri: str, tracking_uri: str | None = None) -> ServableModel:
    """The ``ServableModel`` behind a registered version (``.backbone`` is the trained network, with
    ``features``/``head``: what fine-tuning from a registered model starts from)."""
    with tracking(tracking_uri or mlflow.get_tracking_uri()):
        model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    if not isinstance(model, ServablePyfunc):
        raise TypeError(f"{model_uri}: not a torchtransfer servable model (got {type(model).__name__})")
    return model.module


def input_shape(tracking_uri: str, model_uri: str) -> tuple[int, int, str] | None:
    """(channels, size, resize) a registered servable takes, from its metadata (None: not a torchtransfer
    servable; ``resize``: its ``data.resize``, ``stretch`` for versions logged before that key)."""
    from mlflow.models import get_model_info

    with tracking(tracking_uri):
        meta = get_model_info(model_uri).metadata or {}
    if "input_size" not in meta:
        return None
    return int(meta["in_channels"]), int(meta["input_size"]), str(meta.get("resize", "stretch"))


def predict_uri(tracking_uri: str, model_uri: str, images: np.ndarray) -> pd.DataFrame:
    """Load ``model_uri`` as pyfunc and predict ``images``; a DataFrame with at least a ``label`` column
    (a model that returns a probability/logit array, e.g. an older pytorch-flavour version, is argmaxed)."""
    with tracking(tracking_uri):
        out = mlflow.pyfunc.load_model(model_uri).predict(images)
    if isinstance(out, pd.DataFrame) and "label" in out:
        return out
    scores = np.asarray(out)
    return pd.DataFrame({"label": scores.argmax(axis=1)})


def from_registry(uri: str) -> nn.Module:
    """The trained network of a registered MLflow model, e.g. ``from_registry("models:/NAME@champion")``.

    Reads the servable pyfunc models the flow registers (their ``backbone``), and pytorch-flavour models.
    """
    if not uri.startswith(("models:/", "runs:/")):
        raise ValueError(f"{uri!r}: expected a models:/NAME@ALIAS, models:/NAME/VERSION or runs:/ URI")
    from mlflow.models import get_model_info

    if "pytorch" in get_model_info(uri).flavors:
        import mlflow.pytorch

        model = mlflow.pytorch.load_model(uri, map_location="cpu")
    else:
        model = load_servable(uri).backbone
    if not (hasattr(model, "features") and hasattr(model, "head")):
        raise TypeError(f"{uri}: loaded a {type(model).__name__} without features/head; register a model "
                        "built by torchtransfer.models")
    return model
