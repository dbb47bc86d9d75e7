"""``analyze_shift``: MMD² between source and target, on raw pixels and on the source model's features."""

from __future__ import annotations

from dataclasses import asdict

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.data import DataRef
from tasks.tracking import RunRef, log_metrics
from tasks.train import ModelRef
from torchtransfer import shift
from torchtransfer.config import ShiftConfig


def _sample(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


@torch.no_grad()
def _features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model.features(x[i: i + 512]) for i in range(0, len(x), 512)])  # (N, feature_dim)


@task(cache_policy=NO_CACHE)
def analyze_shift(data: DataRef, source: ModelRef, cfg: ShiftConfig, seed: int,
                  run: RunRef) -> shift.MMDResult:
    """Permutation-tested MMD² on pixels (``shift/*``) and on source-model features (``shift/features_*``)."""
    logger = get_run_logger()
    pair = data.load()
    xs = _sample(pair.source_train.x, cfg.max_samples, seed)  # (m, 1, 28, 28)
    xt = _sample(pair.target_train.x, cfg.max_samples, seed + 1)  # (n, 1, 28, 28)
    pixels = shift.permutation_test(xs, xt, n_permutations=cfg.n_permutations, seed=seed)
    model = source.load()
    feats = shift.permutation_test(_features(model, xs), _features(model, xt),
                                   n_permutations=cfg.n_permutations, seed=seed)
    log_metrics(run, {
        "shift/mmd2": pixels.mmd2, "shift/p_value": pixels.p_value, "shift/bandwidth": pixels.bandwidth,
        "shift/features_mmd2": feats.mmd2, "shift/features_p_value": feats.p_value,
    })
    run.client.log_dict(run.run_id, {"pixels": asdict(pixels), "features": asdict(feats)},
                        "shift/report.json")
    logger.info("shift: pixel MMD² %.4f (p=%.4f, l=%.3f); feature MMD² %.4f (p=%.4f)", pixels.mmd2,
                pixels.p_value, pixels.bandwidth, feats.mmd2, feats.p_value)
    return pixels
