"""Unit-test hooks: ``gpu``-marked tests run only where CUDA is available."""

from __future__ import annotations

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is None:
        return
    import torch

    if not torch.cuda.is_available():
        pytest.skip("gpu: torch.cuda.is_available() is False (no CUDA device or no CUDA build of torch)")
