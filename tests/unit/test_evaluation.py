"""Metrics on hand-computed examples: ECE, per-class precision/recall, the confusion figure, fingerprints."""

import pytest
import torch

from torchtransfer import evaluation as ev


def test_ece_is_zero_for_calibrated_and_large_for_overconfident_predictions():
    y = torch.tensor([0, 0, 0, 1])  # confidence 0.75 everywhere, 3 of 4 right: perfectly calibrated
    calibrated = torch.tensor([[0.75, 0.25]] * 4)
    assert ev.expected_calibration_error(calibrated, y) == pytest.approx(0.0, abs=1e-7)
    overconfident = torch.tensor([[0.99, 0.01]] * 4)  # confident 0.99, right 0.75
    assert ev.expected_calibration_error(overconfident, y) == pytest.approx(0.24, abs=1e-6)


def test_ece_bins_separately_and_weights_by_bin_size():
    probs = torch.tensor([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    y = torch.tensor([0, 0, 1, 1])  # bin 0.95: acc 1 (gap 0.05); bin 0.55: acc 0 (gap 0.55)
    assert ev.expected_calibration_error(probs, y, n_bins=10) == pytest.approx(0.5 * 0.05 + 0.5 * 0.55)


def test_ece_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="expected probs"):
        ev.expected_calibration_error(torch.ones(3, 2) / 2, torch.zeros(4, dtype=torch.long))


def test_per_class_precision_recall_support_and_never_predicted_class():
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    p = torch.tensor([0, 1, 1, 1, 0, 0])  # class 2 never predicted
    rows = {r["class"]: r for r in ev.per_class(y, p, 3)}
    assert (rows[0]["precision"], rows[0]["recall"]) == (pytest.approx(1 / 3), 0.5)
    assert (rows[1]["precision"], rows[1]["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert (rows[2]["precision"], rows[2]["recall"], rows[2]["predicted"]) == (0.0, 0.0, 0)
    assert [r["support"] for r in rows.values()] == [2, 2, 2]


def test_confusion_figure_renders_a_png(tmp_path):
    matrix = ev.confusion(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2, 2, 2]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    path = tmp_path / "cm.png"
    ev.confusion_figure(matrix).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_split_fingerprint_sees_every_pixel_and_label():
    x, y = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(5)
    base = ev.split_fingerprint(x, y)
    x2 = x.clone()
    x2[3, 0, 2, 2] += 1e-3
    assert ev.split_fingerprint(x2, y) != base
    assert ev.split_fingerprint(x, y.flip(0)) != base
    assert ev.split_fingerprint(x.clone(), y.clone()) == base
    assert ev.split_fingerprint(x.reshape(5, 1, 2, 8), y) != base  # same bytes, other shape


def test_classification_metrics_macro_f1_counts_absent_classes():
    m = ev.classification_metrics(torch.tensor([0, 1]), torch.tensor([0, 1]), 4)
    assert m["acc"] == 1.0 and m["macro_f1"] == pytest.approx(0.5)
