"""``register_model``: log the servable model, register one version per run (alias ``challenger``), gate
``champion`` with ``torchtransfer.registry.promotion.passes``, and record the decision in the history and on the run."""

from __future__ import annotations

import json
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from torchtransfer import keys, registry
from torchtransfer.config import RegistryConfig
from torchtransfer.evaluation import split_fingerprint
from torchtransfer.locking import promotion_lock
from torchtransfer.registry import gate as gates
from torchtransfer.registry import promotion
from torchtransfer.registry.serving import servable_for
from torchtransfer_tasks.data import DataRef
from torchtransfer_tasks.tracking import RunRef, log_metrics, log_tags
from torchtransfer_tasks.train import ModelRef

CHALLENGER, CHAMPION = registry.CHALLENGER, registry.CHAMPION


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    aliases: tuple[str, ...]
    decision: promotion.Decision


def version_tags(metrics: dict[str, float], data: DataRef, test_fingerprint: str, model: ModelRef,
                 run_tags: dict[str, str]) -> dict[str, str]:
    """Run id, data and test-split fingerprints, config hash, weights hash and test metrics (``test.target_acc``)."""
    return {keys.DATA_FINGERPRINT: data.fingerprint, keys.TEST_FINGERPRINT: test_fingerprint,
            keys.CONFIG_SHA256: run_tags.get(keys.CONFIG_SHA256, ""), keys.MODEL_SHA256: model.sha256,
            **{keys.as_tag(k): f"{v:.6f}" for k, v in metrics.items()}}


@task(cache_policy=NO_CACHE)
def register_model(model: ModelRef, metrics: dict[str, float], data: DataRef, cfg: RegistryConfig,
                   run: RunRef, seed: int = 0, reference_tags: dict[str, str] | None = None) -> Registered:
    """Register (idempotent by run id) with ``reference_tags`` (the drift reference, ``tasks/drift.py``), then
    promote only when ``cfg.gate`` passes; every decision is recorded."""
    logger = get_run_logger()
    client, name = run.client, cfg.model_name
    pair = data.load()
    test = pair.target_test
    fingerprint = split_fingerprint(test.x, test.y)
    examples = test if len(test) else pair.target_train
    run_tags = client.get_run(run.run_id).data.tags

    def log_model() -> str:
        servable = servable_for(model.load(), model.backbone, model.num_classes, tuple(examples.x.shape[1:]),
                                data.classes, resize=data.resize)
        x = examples.x[:2, 0] if examples.x.shape[1] == 1 else examples.x[:2]  # (2, H, W) or (2, 3, H, W)
        example = (x.numpy() * 255).round().astype("uint8")  # uint8, as users send
        return registry.log_servable(run.tracking_uri, run.run_id, servable, example)

    tags = {**version_tags(metrics, data, fingerprint, model, run_tags), **(reference_tags or {})}
    for abandoned in registry.remove_abandoned(client, name, run.run_id, cfg.incomplete_grace_s):
        logger.warning("%s v%s was left incomplete by an interrupted registration: removed", name, abandoned)
    version, how = registry.register(client, name, run.run_id, log_model, tags)
    v = str(version.version)
    if how == "existing":
        decision = promotion.Decision(False, f"run {run.run_id} is already registered as v{v} "
                                             f"({', '.join(sorted(version.aliases)) or 'no alias'}); no new decision")
        logger.info("%s v%s already registered for this run; %s", name, v, list(version.aliases))
        return Registered(name, v, tuple(version.aliases), decision)

    with promotion_lock(run.tracking_uri):  # read the champion, decide, move the alias: one run at a time
        champion = registry.by_alias(client, name, CHAMPION)
        decision = _decide(client, run, cfg, v, champion, metrics, pair, fingerprint, seed)
        entry = {"kind": "auto", "alias": CHAMPION, "version": v, "run_id": run.run_id, "gate": cfg.gate,
                 "flow_run": run_tags.get("prefect.flow_run_name", ""), "test_fingerprint": fingerprint,
                 "from": str(champion.version) if champion else None,
                 "to": v if decision.promote else (str(champion.version) if champion else None),
                 "min_improvement": cfg.min_improvement, "min_accuracy": cfg.min_accuracy, **decision.as_dict()}
        if decision.promote:
            entry = registry.move_alias(client, name, CHAMPION, v, entry)
        else:
            entry = registry.append_history(client, name, entry)
    _log_decision(run, name, v, entry)
    registry.mark_complete(client, name, v)
    aliases = tuple(client.get_model_version(name, v).aliases)
    logger.info("registered %s v%s %s; %s", name, v, list(aliases), decision.reason)
    return Registered(name, v, aliases, decision)


def _decide(client, run: RunRef, cfg: RegistryConfig, v: str, champion, metrics: dict[str, float], pair,
            fingerprint: str, seed: int) -> promotion.Decision:
    """The gate's decision: on target test accuracy, on a label-free score of both models on the same target
    images, or (``manual``) never automatic."""
    name = cfg.model_name
    if cfg.gate == gates.GATE_MANUAL:
        return gates.manual_decision(name, v)
    if cfg.gate == gates.GATE_ACCURACY:
        challenger = promotion.Scored(v, metrics[keys.TARGET_ACC], fingerprint)
        champion_score = champion and registry.score_version(client, run.tracking_uri, name, champion,
                                                             fingerprint, pair.target_test.x, pair.target_test.y)
        return promotion.passes(challenger, champion_score, cfg.min_improvement, cfg.min_accuracy)
    challenger = promotion.Scored(v, metrics[keys.GATE_SCORE.format(gate=cfg.gate)],
                                  gates.scored_fingerprint(pair), metric=gates.metric_name(cfg.gate))
    champion_score = champion and gates.score_champion(client, name, champion, pair, cfg.gate, seed)
    return promotion.passes(challenger, champion_score, cfg.min_improvement)


def _log_decision(run: RunRef, name: str, version: str, entry: dict) -> None:
    """The decision on the parent run: ``promotion.*`` tags, ``promotion/*`` metrics, ``promotion/decision.json``."""
    log_tags(run, {"registry.model_name": name, "registry.version": version,
                   "promotion.gate": entry["gate"], "promotion.promoted": str(entry["promote"]).lower(),
                   "promotion.reason": entry["reason"],
                   "promotion.from": entry["from"] or "", "promotion.to": entry["to"] or ""})
    log_metrics(run, {"registry/version": float(version), "promotion/promoted": float(entry["promote"]),
                      "promotion/champion_acc": entry["champion_acc"], "promotion/margin": entry["margin"]})
    run.client.log_text(run.run_id, json.dumps(entry, indent=2, sort_keys=True), "promotion/decision.json")
