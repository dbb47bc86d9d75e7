"""GPU check: the same library code on CUDA, beside the CPU result (run it on a machine with a GPU).

    python benchmarks/gpu.py [--cache DIR]

1. ``shift.permutation_test`` on CUDA tensors vs CPU (n = m = 2000, d = 784, B = 1000): same statistic, times.
2. MNIST→USPS on CUDA with the default recipe: source LeNet pretraining, then DAN fine-tuning; target accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torchtransfer import shift  # noqa: E402
from torchtransfer.config import load_config  # noqa: E402
from torchtransfer.data.splits import build_pair  # noqa: E402
from torchtransfer.models import build_model  # noqa: E402
from torchtransfer.train.learner import transfer_learner  # noqa: E402


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="~/.cache/torchtransfer")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")
    cfg = load_config(root / "conf/default.yaml", overrides=[f"cache_dir={args.cache}"])
    pair = build_pair(cfg.data, cfg.seed, Path(args.cache).expanduser())
    x, y = pair.source_train.x[:2000], pair.target_train.x[:1800]
    x = torch.cat([x, pair.source_val.x[: 2000 - len(x)]]) if len(x) < 2000 else x
    y = torch.cat([y, pair.target_test.x[: 2000 - len(y)]])
    print("\n| permutation_test n=m=2000, d=784, B=1000 | MMD² | p | seconds |\n| --- | --- | --- | --- |")
    for device in ("cpu", "cuda"):
        if device == "cuda" and not torch.cuda.is_available():
            continue
        shift.permutation_test(x[:64].to(device), y[:64].to(device), n_permutations=10, seed=0)  # warm-up
        res, sec = timed(lambda d=device: shift.permutation_test(x.to(d), y.to(d), n_permutations=1000, seed=0))
        print(f"| {device} | {res.mmd2:.6f} | {res.p_value:.4f} | {sec:.2f} |")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    p = cfg.pretrain
    learner = transfer_learner(build_model(cfg.model.backbone, cfg.model.num_classes, cfg.seed), lr=p.lr,
                               momentum=p.momentum, weight_decay=p.weight_decay, device=device)
    _, pre_s = timed(lambda: learner.fit(pair.source_train, p.epochs, "fine_tune", val_data=pair.source_val,
                                         batch_size=p.batch_size, augment=True, seed=cfg.seed))
    baseline = learner.evaluate(pair.target_test)["acc"]
    tuned = transfer_learner(learner.model, lr=0.05, momentum=0.9, weight_decay=5e-4, device=device)
    _, ft_s = timed(lambda: tuned.fit(pair.source_train, 20, "fine_tune", val_data=pair.target_val,
                                      target=pair.target_train, adaptation="dan", augment=True, seed=cfg.seed))
    print(f"\n| MNIST→USPS on {device} | seconds | target test acc |\n| --- | --- | --- |")
    print(f"| source pretraining ({p.epochs} epochs) | {pre_s:.1f} | {baseline:.4f} |")
    print(f"| DAN fine-tuning (20 epochs) | {ft_s:.1f} | {tuned.evaluate(pair.target_test)['acc']:.4f} |")


if __name__ == "__main__":
    main()
