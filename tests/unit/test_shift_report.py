import numpy as np
import torch

from torchtransfer import shift
from torchtransfer.shift import report as shift_report


def _gauss(n, d, seed, mean=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + mean


def test_report_holds_every_number_and_matches_the_test():
    x, y = _gauss(60, 3, 0), _gauss(50, 3, 1, mean=1.0)
    labels_x, labels_y = torch.arange(60) % 2, torch.arange(50) % 2
    report, result = shift_report.analyze(x, y, n_permutations=99, seed=3, labels_x=labels_x, labels_y=labels_y)
    assert result == shift.permutation_test(x, y, n_permutations=99, seed=3)
    assert (report["mmd2"], report["p_value"], report["bandwidth"]) == (result.mmd2, result.p_value, result.bandwidth)
    assert (report["n_source"], report["n_target"], report["n_permutations"], report["seed"]) == (60, 50, 99, 3)
    assert report["significant"] and report["a_distance"] > 1.0 and sorted(report["per_class"]) == ["0", "1"]
    assert "null" not in report and report["null_quantiles"]["q95"] < report["mmd2"]


def test_pca_separates_shifted_samples_on_the_first_axis():
    px, py = shift_report.pca_2d(_gauss(100, 10, 0), _gauss(80, 10, 1, mean=3.0))
    assert px.shape == (100, 2) and py.shape == (80, 2)
    assert abs(float(px[:, 0].mean() - py[:, 0].mean())) > 5


def test_null_figure_keeps_the_null_readable_and_the_observed_on_the_axis_when_it_is_far_off():
    x = _gauss(40, 2, 0)
    for mean, far in ((5.0, True), (0.0, False)):
        result = shift.permutation_test(x, _gauss(40, 2, 1, mean=mean), n_permutations=99)
        axes = shift_report.null_figure(result).axes
        assert len(axes) == (2 if far else 1)
        null_ax, observed_ax = axes[0], axes[-1]
        lo, hi = null_ax.get_xlim()
        assert lo <= min(result.null) and max(result.null) <= hi and np.isfinite(lo)
        assert (hi - lo) < 3 * (max(result.null) - min(result.null))  # the null fills its panel
        olo, ohi = observed_ax.get_xlim()
        assert olo <= result.mmd2 <= ohi  # the observed statistic lies on an axis, not off its edge
        if far:
            assert [t.get_text() for t in observed_ax.get_xticklabels()] == [f"{result.mmd2:.4g}"]


def test_every_figure_draws_a_domain_in_its_one_colour():
    from matplotlib.colors import to_hex

    from torchtransfer.report_html import DOMAIN_COLOURS

    ax = shift_report.embedding_figure(_gauss(30, 4, 0), _gauss(30, 4, 1, mean=1.0)).axes[0]
    assert [to_hex(c.get_facecolor()[0]) for c in ax.collections] == [DOMAIN_COLOURS["source"],
                                                                       DOMAIN_COLOURS["target"]]

    from torchtransfer.report_html import curves_figure

    fig = curves_figure({"train/loss": [(0, 1.0), (1, 0.5)], "val/acc": [(0, 0.5), (1, 0.9)]},
                        {"train/loss": "source", "val/acc": "target"})
    assert [to_hex(ax.lines[0].get_color()) for ax in fig.axes] == [DOMAIN_COLOURS["source"], DOMAIN_COLOURS["target"]]
    assert [ax.get_title() for ax in fig.axes] == ["train/loss (source)", "val/acc (target)"]
