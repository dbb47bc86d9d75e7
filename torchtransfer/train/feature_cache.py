"""Feature extraction with a feature cache: the frozen trunk runs once over the data (eval mode, no grad),
then every epoch trains only the head on the cached features (N, d), so an epoch costs a linear layer.

Exact for ``feature_extraction`` without augmentation or adaptation: the trunk is frozen and in eval mode,
so its features are the same at every epoch.

Across fits (the trials of a study, which all start from the same source model), the features of an in-memory
``Domain`` are kept, keyed by a sha256 of the trunk's weights and buffers (the head excluded) and of the
images and labels: a feature-extraction trial on the same trunk and data trains only the head. The last
``MEMO_ENTRIES`` keys are kept, on the CPU.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from torchtransfer.data import batches
from torchtransfer.data.datasets import Domain
from torchtransfer.evaluation import classification_metrics
from torchtransfer.train import strategies
from torchtransfer.train.features import trunk_features
from torchtransfer.train.optim import OptimConfig, make_optimizer, make_scheduler
from torchtransfer.train.results import EpochStats

MEMO_ENTRIES = 4
_MEMO: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()


def _bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def trunk_key(model: nn.Module, data: batches.Data) -> str | None:
    """sha256 of the trunk's state (every entry but ``head.*``) and of ``data``'s images and labels; None
    unless ``data`` is an in-memory ``Domain`` (a dataset would have to be read to be hashed)."""
    if not isinstance(data, Domain):
        return None
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        if not name.startswith("head."):
            digest.update(name.encode() + b"\0" + str(value.dtype).encode() + _bytes(value))
    digest.update(_bytes(data.x) + _bytes(data.y))
    return digest.hexdigest()


def cached_features(model: nn.Module, data: batches.Data, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, d) on ``device``, labels (N,)) for the labelled images of ``data``; computed once per
    trunk and data (``trunk_key``)."""
    key = trunk_key(model, data)
    if key is not None and key in _MEMO:
        _MEMO.move_to_end(key)
        feats, labels = _MEMO[key]
        return feats.to(device), labels.to(device)
    feats, labels = [], []
    for x, y in batches.in_order(data, 512):
        keep = y >= 0
        feats.append(trunk_features(model, [(x[keep], y[keep])], device))
        labels.append(y[keep])
    feats, labels = torch.cat(feats), torch.cat(labels)
    if key is not None:
        _MEMO[key] = (feats, labels)
        while len(_MEMO) > MEMO_ENTRIES:
            _MEMO.popitem(last=False)
    return feats.to(device), labels.to(device)


def fit_head_on_cache(model: nn.Module, cfg: OptimConfig, device: torch.device, data: batches.Data,
                      val_data: batches.Data | None, epochs: int, batch_size: int,
                      gen: torch.Generator) -> Iterator[EpochStats]:
    """Yield ``EpochStats`` per epoch of head-only training on cached features."""
    strategies.freeze(model, 0)
    f_train, y_train = cached_features(model, data, device)  # (N, d), (N,)
    f_val, y_val = cached_features(model, val_data, device) if val_data is not None else (None, None)
    opt = make_optimizer([{"params": list(model.head.parameters()), "lr": cfg.lr, "name": "head"}], cfg)
    steps = batches.n_batches(len(y_train), batch_size)
    sched = make_scheduler(opt, cfg, steps, epochs)
    for epoch in range(1, epochs + 1):
        model.head.train()
        order = torch.randperm(len(y_train), generator=gen).to(device)
        total, n = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            if len(idx) < 2:
                continue
            loss = F.cross_entropy(model.head(f_train[idx]), y_train[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.head.parameters(), cfg.clip_grad_norm)
            opt.step()
            sched.step()
            total += float(loss.detach())
            n += 1
        val = None
        if f_val is not None:
            model.head.eval()
            with torch.no_grad():
                pred = model.head(f_val).argmax(1)
            val = classification_metrics(y_val.cpu(), pred.cpu(), model.head.out_features)["acc"]
        yield EpochStats(epoch, total / max(n, 1), val, opt.param_groups[-1]["lr"])
