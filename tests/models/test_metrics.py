import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from riskstrat.models.metrics import calibration_intercept_slope, compare_models, evaluate_scores


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 9, size=n)
    y = rng.binomial(1, p)
    return y, np.round(p, 3)  # rounding creates ties


def _get(table, metric, column="value"):
    return float(table.loc[table["metric"] == metric, column].iloc[0])


def test_point_estimates_agree_with_scikit_learn():
    y, p = _data(5000)
    table = evaluate_scores(y, p, n_boot=20)
    assert _get(table, "auroc") == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert _get(table, "auprc") == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert _get(table, "brier") == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert _get(table, "oe_ratio") == pytest.approx(y.sum() / p.sum())
    assert set(table.columns) == {"metric", "value", "ci_low", "ci_high", "n", "events"}
    assert (table["n"] == 5000).all() and (table["events"] == y.sum()).all()


def test_ppv_and_sensitivity_at_top_count_the_highest_risk_people():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1] * 10)
    score = np.linspace(1, 0, 100)
    table = evaluate_scores(y, score, top_fractions=(0.05,), capacity_share=0.02, n_boot=10)
    top5 = y[:5]
    assert _get(table, "ppv_top_5pct") == pytest.approx(top5.mean())
    assert _get(table, "sensitivity_top_5pct") == pytest.approx(top5.sum() / y.sum())
    assert _get(table, "ppv_at_capacity") == pytest.approx(y[:2].mean())


def test_calibration_slope_near_one_for_true_probabilities_and_below_for_overconfident():
    y, p = _data(20_000, seed=1)
    intercept, slope = calibration_intercept_slope(y, p)
    assert slope == pytest.approx(1.0, abs=0.1) and intercept == pytest.approx(0.0, abs=0.1)
    q = np.clip(p, 0.001, 0.999)
    logit = np.log(q / (1 - q))
    overconfident = 1 / (1 + np.exp(-(2 * logit - np.mean(logit))))
    assert calibration_intercept_slope(y, overconfident)[1] < 0.7


def test_bootstrap_replicates_use_the_same_estimator_as_the_point_estimate():
    y, p = _data(3000, seed=2)
    table = evaluate_scores(y, p, n_boot=200)
    for metric in ("calibration_slope", "calibration_intercept", "auroc"):
        assert _get(table, metric, "ci_low") <= _get(table, metric) <= _get(table, metric, "ci_high")


def test_intervals_contain_the_estimate_and_narrow_with_n():
    small = evaluate_scores(*_data(1000, seed=3), n_boot=100)
    large = evaluate_scores(*_data(16_000, seed=3), n_boot=100)
    for table in (small, large):
        assert (
            (table["ci_low"] <= table["value"] + 1e-12) & (table["value"] <= table["ci_high"] + 1e-12)
        ).all()
    for metric in ("auroc", "brier", "calibration_slope", "ppv_top_5pct"):
        width_small = _get(small, metric, "ci_high") - _get(small, metric, "ci_low")
        width_large = _get(large, metric, "ci_high") - _get(large, metric, "ci_low")
        assert width_large < width_small / 2


def test_compare_models_shares_resamples_and_reports_ranking_only_baselines():
    y, p = _data(2000, seed=4)
    table = compare_models(y, {"a": p, "b": p, "rule": np.arange(len(p))}, ranking_only=["rule"], n_boot=30)
    a, b = table[table["model"] == "a"], table[table["model"] == "b"]
    np.testing.assert_array_equal(a["ci_low"].to_numpy(), b["ci_low"].to_numpy())
    assert "calibration_slope" not in set(table.loc[table["model"] == "rule", "metric"])


def test_same_seed_same_intervals():
    y, p = _data(2000, seed=5)
    first = evaluate_scores(y, p, n_boot=30, seed=9)
    second = evaluate_scores(y, p, n_boot=30, seed=9)
    assert first.equals(second)


def test_paired_auroc_difference_against_a_reference_model():
    """'Better than' carries a paired interval: same resamples for both models, so a tie is a tie."""
    y, p = _data(4000, seed=6)
    noisy = np.clip(p + np.random.default_rng(1).normal(0, 0.15, len(p)), 0.001, 0.999)
    table = compare_models(
        y,
        {"model": p, "copy": p, "noisy": noisy, "rule": np.arange(len(p))},
        ranking_only=["rule"],
        n_boot=50,
    )
    assert "auroc_difference" not in set(table["metric"])  # only with a reference
    table = compare_models(y, {"model": p, "copy": p, "noisy": noisy}, n_boot=50, reference="model")
    rows = table[table["metric"] == "auroc_difference"].set_index("model")
    assert set(rows.index) == {"copy", "noisy"}
    # An identical model differs by exactly 0 in every resample.
    assert rows.loc["copy", ["value", "ci_low", "ci_high"]].tolist() == [0.0, 0.0, 0.0]
    expected = roc_auc_score(y, p) - roc_auc_score(y, noisy)
    assert rows.loc["noisy", "value"] == pytest.approx(expected, abs=1e-12)
    assert 0 < rows.loc["noisy", "ci_low"] < expected < rows.loc["noisy", "ci_high"]
    # Pairing makes the difference's interval narrower than either AUROC's own interval.
    own = table[(table["metric"] == "auroc") & (table["model"] == "noisy")].iloc[0]
    assert rows.loc["noisy", "ci_high"] - rows.loc["noisy", "ci_low"] < own["ci_high"] - own["ci_low"]
    assert (rows["n"] == 4000).all() and (rows["events"] == y.sum()).all()
