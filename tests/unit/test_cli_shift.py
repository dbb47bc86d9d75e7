"""``torchtransfer shift A B`` on .npy/.npz files and image folders, through the real Typer app."""

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from torchtransfer_cli.app import app

runner = CliRunner()


def _gauss(n, d, seed, mean=0.0):
    return np.random.default_rng(seed).normal(mean, 1.0, size=(n, d))


def test_npy_files_give_the_json_report_and_the_exit_code(tmp_path):
    np.save(tmp_path / "a.npy", _gauss(60, 4, 0))
    np.save(tmp_path / "b.npy", _gauss(60, 4, 1, mean=1.0))
    out = runner.invoke(app, ["shift", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "-B", "99", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["p_value"] == 0.01 and report["significant"] and report["n_permutations"] == 99
    assert report["n_source"] == report["n_target"] == 60 and report["per_class"] == {}
    failed = runner.invoke(app, ["shift", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "-B", "99",
                                 "--fail-on-shift"])
    assert failed.exit_code == 1 and "significant shift" in failed.output


def test_npz_labels_and_multi_kernel(tmp_path):
    y = np.arange(80) % 2
    np.savez(tmp_path / "a.npz", x=_gauss(80, 3, 0), y=y)
    np.savez(tmp_path / "b.npz", x=_gauss(80, 3, 1), y=y)
    out = runner.invoke(app, ["shift", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "-B", "49",
                              "--bandwidth", "0.5", "--bandwidth", "2", "--json", "--fail-on-shift"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["bandwidth"] == [0.5, 2.0] and sorted(report["per_class"]) == ["0", "1"]


def test_image_folders_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for side, offset in (("a", 0), ("b", 120)):
        for cls in ("cat", "dog"):
            (tmp_path / side / cls).mkdir(parents=True)
            for i in range(6):
                pixels = rng.integers(0, 100, size=(8, 8), dtype=np.uint8) + offset
                Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / side / cls / f"{i}.png")
    out = runner.invoke(app, ["shift", str(tmp_path / "a"), str(tmp_path / "b"), "-B", "99",
                              "--plots", str(tmp_path / "plots")])
    assert out.exit_code == 0, out.output
    assert "significant shift" in out.output and "per-class" in out.output
    assert (tmp_path / "plots" / "embedding.png").stat().st_size > 0
    assert (tmp_path / "plots" / "null.png").stat().st_size > 0


def test_bad_inputs_exit_2_and_name_the_file(tmp_path):
    np.save(tmp_path / "a.npy", _gauss(10, 4, 0))
    np.save(tmp_path / "c.npy", _gauss(10, 5, 0))
    (tmp_path / "empty").mkdir()
    np.savez(tmp_path / "two.npz", p=np.zeros((3, 2)), q=np.zeros((3, 2)))
    for other, message in ((tmp_path / "c.npy", "different dimensions"), (tmp_path / "nope.npy", "nope.npy"),
                           (tmp_path / "empty", "no images"), (tmp_path / "two.npz", "two.npz")):
        out = runner.invoke(app, ["shift", str(tmp_path / "a.npy"), str(other)])
        assert out.exit_code == 2 and message in out.output, out.output


def test_aggregated_test_option_reports_every_bandwidth_and_rejects_bad_options(tmp_path):
    np.save(tmp_path / "a.npy", _gauss(50, 4, 0))
    np.save(tmp_path / "b.npy", _gauss(50, 4, 1, mean=1.0))
    a, b = str(tmp_path / "a.npy"), str(tmp_path / "b.npy")
    out = runner.invoke(app, ["shift", a, b, "-B", "99", "--test", "aggregated", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["test"] == "aggregated" and report["p_value"] == 0.01 and report["significant"]
    assert len(report["bandwidths"]) == len(report["p_values"]) == len(report["mmd2s"]) == 7
    assert report["bandwidth"] in report["bandwidths"]  # the median one: its MMD² is report["mmd2"]
    table = runner.invoke(app, ["shift", a, b, "-B", "99", "--test", "aggregated"])
    assert table.exit_code == 0 and "aggregated" in table.output and "its own p" in table.output
    for extra, message in ((["--test", "mean"], "--test: expected one of median, aggregated"),
                           (["--test", "aggregated", "--bandwidth", "1"], "--bandwidth: the aggregated test")):
        bad = runner.invoke(app, ["shift", a, b, *extra])
        assert bad.exit_code == 2 and message in bad.output, bad.output
