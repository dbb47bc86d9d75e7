"""What a run needs to be reproduced: code (git), environment (packages, torch, CUDA, device) and seeds."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

import torchtransfer
from torchtransfer.config import ExperimentConfig
from torchtransfer.train.learner import resolve_device

PROJECT_ROOT = Path(torchtransfer.__file__).resolve().parents[1]


def git(*args: str, cwd: Path = PROJECT_ROOT) -> str | None:
    """``git args`` in the project folder; None outside a git checkout or without git."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def code_record() -> tuple[dict[str, str], str | None]:
    """Tags ``git.commit`` and ``git.dirty``, and the diff against HEAD (tracked files) when dirty."""
    commit = (git("rev-parse", "HEAD") or "").strip() or "unknown"
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status and status.strip())
    diff = git("diff", "HEAD") if dirty else None
    return {"git.commit": commit, "git.dirty": str(dirty).lower()}, diff


def requirements() -> str:
    """``pip freeze``-style list of every installed distribution."""
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"])
    return "\n".join(dict.fromkeys(dists)) + "\n"


def environment_tags(cfg: ExperimentConfig) -> dict[str, str]:
    device = resolve_device(cfg.device)
    return {
        "env.python": platform.python_version(),
        "env.platform": platform.platform(),
        "env.torch": torch.__version__,
        "env.cuda": torch.version.cuda or "none",
        "env.device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "env.deterministic": "true",
    }


def seed_params(cfg: ExperimentConfig) -> dict[str, int]:
    """Every seed the run uses; all derive from ``cfg.seed``."""
    return {f"seed.{what}": cfg.seed for what in ("splits", "init", "batches", "sampler", "permutations")}
