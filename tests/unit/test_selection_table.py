"""The validator benchmark's selection rule acts as the flow does: best epoch per trial, then the best trial."""

from benchmarks.selection_table import audit, newest, pick


def _epoch(score: float, test: float) -> dict:
    return {"val/acc": score, "validation/im": -score, "validation/snd": score, "validation/bnm": score,
            "validation/dev": score, "validation/class_ami": score, "validation/source_val_acc": score,
            "test/acc": test}


def test_pick_takes_each_trials_best_epoch_then_the_best_trial():
    trials = [[_epoch(0.5, 0.60), _epoch(0.9, 0.70)], [_epoch(0.8, 0.95), _epoch(0.7, 0.50)]]
    assert pick(trials, "val/acc")["test/acc"] == 0.70  # trial 0's epoch 1 (0.9) beats trial 1's best (0.8)
    assert pick(trials, "validation/im")["test/acc"] == 0.60  # im = −score: the lowest score wins


def test_audit_reports_the_picks_test_accuracy_and_rank_correlation():
    trials = [[_epoch(0.1, 0.1), _epoch(0.2, 0.2)], [_epoch(0.3, 0.3)]]
    result = audit(trials)
    assert result["target_val_acc"] == {"test_acc": 0.3, "spearman": 1.0}
    assert result["im"]["spearman"] == -1.0 and result["im"]["test_acc"] == 0.1
    assert result["best checkpoint (hindsight)"]["test_acc"] == 0.3


def test_rows_from_older_code_are_not_mixed_in():
    rows = [{"library": "a", "n": 1}, {"library": "b", "n": 2}, {"library": "b", "n": 3}]
    assert [r["n"] for r in newest(rows)] == [2, 3]
