"""Shift tasks: ``analyze_shift`` (before tuning), ``steer_search`` (its verdict on the search space) and
``measure_adapted_shift`` (after fine-tuning). The numbers come from ``torchtransfer.shift.report``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from torchtransfer import keys, shift
from torchtransfer.config import SearchConfig, ShiftConfig
from torchtransfer.data.splits import DomainPair
from torchtransfer.progress import stage
from torchtransfer.shift import report as shift_report
from torchtransfer.train.features import trunk_features
from torchtransfer.tune import search
from torchtransfer_tasks.data import DataRef
from torchtransfer_tasks.tracking import RunRef, log_metrics, log_params, log_tags
from torchtransfer_tasks.train import ModelRef


@dataclass(frozen=True)
class ShiftAnalysis:
    """Pixel and source-feature results; ``mmd2``/``p_value`` are the pixel ones (the summary's numbers)."""

    pixels: shift.MMDResult
    features: shift.MMDResult
    a_distance: float
    features_a_distance: float

    @property
    def mmd2(self) -> float:
        return self.pixels.mmd2

    @property
    def p_value(self) -> float:
        return self.pixels.p_value


def _sample(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def _samples(pair: DomainPair, cfg: ShiftConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded subsamples of source train and target train images, (m, C, H, W) and (n, C, H, W)."""
    return (_sample(pair.source_train.x, cfg.max_samples, seed),
            _sample(pair.target_train.x, cfg.max_samples, seed + 1))


def _features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, feature_dim) trunk features on the CPU, in batches of 512 (N may be 0)."""
    if len(x) == 0:
        return torch.zeros(0, model.feature_dim)
    batches = ((x[i: i + 512], None) for i in range(0, len(x), 512))
    return trunk_features(model, batches, torch.device("cpu"))


def _labelled(pair: DomainPair, cfg: ShiftConfig, seed: int) -> tuple[torch.Tensor, ...]:
    """Source train and the labelled target images (labelled target train + target val), with labels."""
    keep = pair.target_train.y >= 0
    xt = torch.cat([pair.target_train.x[keep], pair.target_val.x])
    yt = torch.cat([pair.target_train.y[keep], pair.target_val.y])
    known = pair.source_train.y >= 0  # data.source.train_labelled < 1 hides some source labels
    xs, ys = pair.source_train.x[known], pair.source_train.y[known]
    pick_s = torch.randperm(len(ys), generator=torch.Generator().manual_seed(seed))
    pick_t = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed + 1))
    n = cfg.max_samples
    return xs[pick_s[:n]], ys[pick_s[:n]], xt[pick_t[:n]], yt[pick_t[:n]]


def _one(name: str, xs: torch.Tensor, xt: torch.Tensor, per_class_inputs: tuple[torch.Tensor, ...],
         cfg: ShiftConfig, seed: int, run: RunRef) -> tuple[dict, shift.MMDResult]:
    """Report one representation (x_s, x_t); per-class MMD² on (x_s, x_t, y_s, y_t); the null figure."""
    with stage(f"shift on {name}"):
        report, result = shift_report.analyze(xs, xt, n_permutations=cfg.n_permutations, seed=seed,
                                              alpha=cfg.alpha, test=cfg.test)
    labelled_target = len(per_class_inputs[1]) > 0  # none when the target has no labels at all
    per_class = shift.class_conditional_mmd(*per_class_inputs, bandwidth=result.bandwidth, seed=seed) \
        if labelled_target else {}
    report["per_class"] = {str(c): v for c, v in per_class.items()}
    fig = shift_report.null_figure(result, title=f"MMD² permutation test ({name})")
    run.client.log_figure(run.run_id, fig, f"shift/null_{name}.png")
    return report, result


@task(cache_policy=NO_CACHE)
def analyze_shift(data: DataRef, source: ModelRef, cfg: ShiftConfig, seed: int, run: RunRef) -> ShiftAnalysis:
    """Permutation-tested MMD², proxy A-distance and per-class MMD² on pixels (``shift/*``) and on the
    source model's penultimate features (``shift/features_*``); ``shift/report.json``, the null
    histograms and ``shift/embedding.png``."""
    logger = get_run_logger()
    pair = data.load()
    xs, xt = _samples(pair, cfg, seed)  # (m, 1, 28, 28), (n, 1, 28, 28)
    ls_x, ls_y, lt_x, lt_y = _labelled(pair, cfg, seed)
    model = source.load()
    fs, ft = _features(model, xs), _features(model, xt)
    px_report, px = _one("pixels", xs, xt, (ls_x, lt_x, ls_y, lt_y), cfg, seed, run)
    ft_report, ft_res = _one("features", fs, ft, (_features(model, ls_x), _features(model, lt_x), ls_y, lt_y),
                             cfg, seed, run)
    run.client.log_dict(run.run_id, {"seed": seed, "max_samples": cfg.max_samples, "pixels": px_report,
                                     "features": ft_report}, "shift/report.json")
    run.client.log_figure(run.run_id, shift_report.embedding_figure(
        fs, ft, title="source-model features (PCA)"), "shift/embedding.png")
    log_metrics(run, {
        keys.SHIFT_MMD2: px.mmd2, keys.SHIFT_P_VALUE: px.p_value, "shift/a_distance": px_report["a_distance"],
        "shift/features_mmd2": ft_res.mmd2, "shift/features_p_value": ft_res.p_value,
        "shift/features_a_distance": ft_report["a_distance"],
        **({"shift/bandwidth": px.bandwidth} if isinstance(px.bandwidth, float) else {}),
    })
    logger.info("shift: pixel MMD² %.4f (p=%.4g, A-dist %.3f); feature MMD² %.4f (p=%.4g, A-dist %.3f)", px.mmd2,
                px.p_value, px_report["a_distance"], ft_res.mmd2, ft_res.p_value, ft_report["a_distance"])
    return ShiftAnalysis(px, ft_res, px_report["a_distance"], ft_report["a_distance"])


@task(cache_policy=NO_CACHE)
def steer_search(space: SearchConfig, cfg: ShiftConfig, analysis: ShiftAnalysis, run: RunRef) -> SearchConfig:
    """The search space steered by the feature-space verdict (the representation the adaptation losses
    align); tags ``steer.decision`` and ``steer.reason`` on the parent run."""
    if not cfg.steer:
        reason = "unchanged: steering disabled (shift.steer = false)"
    else:
        p = analysis.features.p_value if cfg.n_permutations > 0 else None
        space, reason = search.steer(space, p, cfg.alpha)
        reason = f"{reason}; on source-model features" if p is not None else reason
    log_tags(run, {"steer.decision": reason.split(":")[0], "steer.reason": reason})
    weight = space.adaptation_weight
    log_params(run, {"steer.search.method": ",".join(space.method),
                     "steer.search.adaptation_weight": f"{weight.low}..{weight.high}"})
    get_run_logger().info("steering: %s", reason)
    return space


@task(cache_policy=NO_CACHE)
def measure_adapted_shift(data: DataRef, model: ModelRef, cfg: ShiftConfig, seed: int,
                          run: RunRef) -> shift.MMDResult:
    """MMD² on the fine-tuned model's features of the same images as ``analyze_shift``
    (``shift/mmd2_after``, ``shift/p_value_after``, ``shift/a_distance_after``; ``shift/report_after.json``)."""
    pair = data.load()
    xs, xt = _samples(pair, cfg, seed)
    adapted = model.load()
    fs, ft = _features(adapted, xs), _features(adapted, xt)
    with stage("shift on adapted features"):
        report, result = shift_report.analyze(fs, ft, n_permutations=cfg.n_permutations, seed=seed,
                                              alpha=cfg.alpha, test=cfg.test)
    run.client.log_dict(run.run_id, report, "shift/report_after.json")
    run.client.log_figure(run.run_id, shift_report.embedding_figure(
        fs, ft, title="adapted-model features (PCA)"), "shift/embedding_after.png")
    log_metrics(run, {"shift/mmd2_after": result.mmd2, "shift/p_value_after": result.p_value,
                      "shift/a_distance_after": report["a_distance"]})
    get_run_logger().info("shift after fine-tuning: feature MMD² %.4f (p=%.4g, A-dist %.3f)", result.mmd2,
                          result.p_value, report["a_distance"])
    return result
