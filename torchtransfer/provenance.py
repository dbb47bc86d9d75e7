"""What a run needs to be reproduced: code (git), environment (packages, torch, CUDA, device) and seeds."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from torchtransfer.devices import resolve_device

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def git(*args: str, cwd: Path = PROJECT_ROOT) -> str | None:
    """``git args`` in the project folder; None outside a git checkout or without git."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def library_hash(root: Path = PROJECT_ROOT) -> str:
    """sha256 (12 hex digits) of the library's Python sources under ``root``/torchtransfer: benchmark rows with
    the same hash were produced by the same library code, whatever the commit."""
    digest = hashlib.sha256()
    for path in sorted((root / "torchtransfer").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def code_record(cwd: Path = PROJECT_ROOT) -> tuple[dict[str, str], str | None]:
    """Tags ``git.commit`` and ``git.dirty``, and the diff against HEAD (tracked files) when dirty, of the
    checkout at ``cwd`` (the project's own by default)."""
    commit = (git("rev-parse", "HEAD", cwd=cwd) or "").strip() or "unknown"
    status = git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    dirty = bool(status and status.strip())
    diff = git("diff", "HEAD", cwd=cwd) if dirty else None
    return {"git.commit": commit, "git.dirty": str(dirty).lower()}, diff


def requirements() -> str:
    """``pip freeze``-style list of every installed distribution."""
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"])
    return "\n".join(dict.fromkeys(dists)) + "\n"


def environment_tags(device: str) -> dict[str, str]:
    """Python, platform, torch, CUDA, the resolved ``device`` and whether torch's deterministic algorithms are
    on (``true``, ``warn-only`` when non-deterministic ops only warn, or ``false``) at the time of the call."""
    resolved = resolve_device(device)
    deterministic = torch.are_deterministic_algorithms_enabled()
    if deterministic and torch.is_deterministic_algorithms_warn_only_enabled():
        mode = "warn-only"
    else:
        mode = str(deterministic).lower()
    return {
        "env.python": platform.python_version(),
        "env.platform": platform.platform(),
        "env.torch": torch.__version__,
        "env.cuda": torch.version.cuda or "none",
        "env.device": str(resolved) + (f" ({torch.cuda.get_device_name(resolved)})" if resolved.type == "cuda" else ""),
        "env.deterministic": mode,
    }


def seed_params(seed: int, n_workers: int = 1) -> dict[str, int | str]:
    """Every seed the run uses; all derive from ``seed``. Trial worker ``i`` samples with ``seed + i``, so
    with several workers ``seed.sampler`` lists them (``0,1,2``)."""
    params: dict[str, int | str] = {f"seed.{what}": seed for what in ("splits", "init", "batches", "permutations")}
    params["seed.sampler"] = seed if n_workers == 1 else ",".join(str(seed + i) for i in range(n_workers))
    return params
