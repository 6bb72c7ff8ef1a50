"""Drift (PSI) and estimated performance (CBPE) on fixtures whose answers are known."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from riskstrat.evaluation.drift import (
    CBPE,
    drift,
    drift_reference,
    estimated_alarms,
    estimated_performance,
    expected_auroc,
    population_stability_index,
)
from riskstrat.evaluation.monitoring_settings import DriftSettings, EstimationSettings

SETTINGS = DriftSettings()


def test_psi_matches_a_hand_computation():
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert population_stability_index([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_floors_an_empty_bin():
    psi = population_stability_index([0.5, 0.5, 0.0], [0.5, 0.4, 0.1])
    floor = 1e-4
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - floor) * math.log(0.1 / floor)
    assert psi == pytest.approx(expected)


def _population(n: int, seed: int, age_shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {
            "age": rng.normal(60 + age_shift, 12, n),
            "ltc_count": rng.poisson(2, n).clip(0, 6),  # few distinct values: binned by value
            "sex": rng.choice(["1", "2"], n),
            "efi_score": np.where(rng.random(n) < 0.1, np.nan, rng.beta(2, 8, n)),
            "unimportant": rng.normal(0, 1, n),
        }
    )
    # Scores depend on features the shift does not touch, so only the feature moves.
    score = 1 / (1 + np.exp(-(-3 + 0.5 * features["ltc_count"] + rng.normal(0, 0.5, n))))
    return features, score.to_numpy()


IMPORTANCE = {
    "emergency_admission": {"age": 50.0, "ltc_count": 40.0, "sex": 5.0, "efi_score": 20.0, "unimportant": 0.0}
}


@pytest.fixture(scope="module")
def reference():
    features, score = _population(20_000, seed=1)
    return drift_reference({"emergency_admission": score}, features, IMPORTANCE, SETTINGS)


def test_reference_is_json_and_keeps_the_most_important_features(reference):
    assert json.loads(json.dumps(reference)) == reference
    assert reference["top_features"]["emergency_admission"] == ["age", "ltc_count", "efi_score", "sex"]
    assert reference["features"]["ltc_count"]["kind"] == "values"
    assert reference["features"]["age"]["kind"] == "numeric"
    assert len(reference["features"]["age"]["edges"]) == SETTINGS.bins - 1
    # Quantile bins: each holds a tenth of the reference (missing bin empty).
    assert np.allclose(reference["features"]["age"]["shares"][:-1], 0.1, atol=0.002)


def test_a_fresh_sample_of_the_same_population_does_not_drift(reference):
    features, score = _population(20_000, seed=2)
    result = drift(reference, {"emergency_admission": score}, features, SETTINGS)
    assert result.alarms == []
    assert (result.table["psi"] < 0.01).all()


def test_a_shifted_feature_raises_a_drift_alarm_and_leads_moved_most(reference):
    features, score = _population(20_000, seed=3, age_shift=8.0)
    result = drift(reference, {"emergency_admission": score}, features, SETTINGS)
    assert result.moved_most[0] == "age"
    (alarm,) = result.alarms
    assert alarm.check == "drift" and alarm.subject == "features" and alarm.level == "critical"
    assert alarm.message.startswith(
        "1 feature moved from the training reference by PSI at or above 0.25: age ("
    )
    row = result.table.set_index("name").loc["age"]
    assert row["kind"] == "feature" and row["psi"] > SETTINGS.psi_critical
    # The score did not move.
    assert result.table.set_index("name").loc["p_emergency_admission", "level"] is None


def test_unseen_category_and_missing_values_have_their_own_bins(reference):
    features, score = _population(5_000, seed=4)
    features["sex"] = "9"  # never in the reference: all in "other"
    features["efi_score"] = np.nan  # all missing
    result = drift(reference, {"emergency_admission": score}, features, SETTINGS)
    psi = result.table.set_index("name")["psi"]
    assert psi["sex"] > 1 and psi["efi_score"] > 1
    assert set(result.moved_most[:2]) == {"sex", "efi_score"}


def test_a_score_shift_raises_a_score_alarm(reference):
    features, score = _population(20_000, seed=5)
    result = drift(reference, {"emergency_admission": np.clip(score * 1.8, 0, 1)}, features, SETTINGS)
    (alarm,) = [a for a in result.alarms if a.subject == "emergency_admission"]
    assert alarm.level == "critical" and "this week's scores moved" in alarm.message


def _brute_force_auroc(p: np.ndarray) -> float:
    above = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    weight = p[:, None] * (1 - p[None, :])
    np.fill_diagonal(weight, 0)
    return float(np.sum(weight * above) / np.sum(weight))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_auroc_equals_the_brute_force_sum_over_pairs(seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(1, 6, 400), 2)  # rounded: many ties
    assert expected_auroc(p) == pytest.approx(_brute_force_auroc(p), rel=1e-12)


def test_estimated_auroc_matches_the_monte_carlo_mean_and_its_interval_covers_it():
    rng = np.random.default_rng(7)
    p = rng.beta(1, 8, 3000)
    settings = EstimationSettings(draws=400)
    result = estimated_performance(p, settings)
    assert result["method"] == CBPE and "assumes" in result["note"]
    assert result["n"] == 3000 and result["expected_events"] == pytest.approx(p.sum())
    # Mean AUROC over many outcome draws, computed the plain way.
    aurocs = []
    for _ in range(300):
        y = rng.random(3000) < p
        ranks = pd.Series(p).rank().to_numpy()
        k = y.sum()
        aurocs.append((ranks[y].sum() - k * (k + 1) / 2) / (k * (3000 - k)))
    assert result["estimated_auroc"] == pytest.approx(np.mean(aurocs), abs=0.004)
    assert result["auroc_low"] < result["estimated_auroc"] < result["auroc_high"]
    assert result["auroc_low"] == pytest.approx(np.percentile(aurocs, 2.5), abs=0.01)
    assert result["auroc_high"] == pytest.approx(np.percentile(aurocs, 97.5), abs=0.01)
    assert estimated_performance(p, settings) == result  # seeded


def test_a_compressed_score_distribution_raises_an_estimated_warning():
    rng = np.random.default_rng(8)
    wide = rng.beta(0.8, 6, 20_000)
    reference = {"estimated_auroc": {"emergency_admission": expected_auroc(wide)}}
    narrow = 0.1 + 0.2 * (wide - wide.mean())  # same mean, far less spread
    settings = EstimationSettings()
    estimates = {"emergency_admission": estimated_performance(narrow, settings)}
    (alarm,) = estimated_alarms(estimates, reference, settings)
    assert alarm.check == "estimated" and alarm.level == "warning"
    assert "assumes calibration" in alarm.message
    same = {"emergency_admission": estimated_performance(wide, settings)}
    assert estimated_alarms(same, reference, settings) == []


def test_a_missing_reference_feature_is_a_clear_error(reference):
    from riskstrat.errors import RiskstratError

    features, score = _population(1_000, seed=9)
    with pytest.raises(RiskstratError, match="no column 'age'"):
        drift(reference, {"emergency_admission": score}, features.drop(columns="age"), SETTINGS)


def test_large_populations_draw_the_same_interval_from_the_normal_approximation():
    from riskstrat.evaluation.drift import _auroc_draws

    p = np.random.default_rng(9).beta(1, 10, 30_000)
    exact = _auroc_draws(p, 400, np.random.default_rng(1), exact=True)
    approx = _auroc_draws(p, 400, np.random.default_rng(2), exact=False)
    assert np.mean(approx) == pytest.approx(np.mean(exact), abs=0.001)
    assert np.std(approx) == pytest.approx(np.std(exact), rel=0.15)


def test_a_float32_training_reference_does_not_drift_from_the_same_float64_values():
    # Training tables hold features as float32, the weekly matrix float64 (ae_trend_90d: n - 90/275 x m).
    rng = np.random.default_rng(4)
    trend = pd.Series(rng.integers(0, 3, 5_000) - 90 / 275 * rng.integers(0, 3, 5_000))  # 9 values
    fraction = pd.Series(rng.integers(0, 40, 5_000) / 3)  # many distinct values: quantile edges
    weekly = pd.DataFrame({"ae_trend_90d": trend, "fraction": fraction})
    training = weekly.astype("float32")
    score = rng.random(5_000)
    importance = {"emergency_admission": {"ae_trend_90d": 2.0, "fraction": 1.0}}
    reference = drift_reference({"emergency_admission": score}, training, importance, SETTINGS)
    assert reference["features"]["ae_trend_90d"]["kind"] == "values"
    assert reference["features"]["fraction"]["kind"] == "numeric"
    result = drift(reference, {"emergency_admission": score}, weekly, SETTINGS)
    psi = result.table.set_index("name")["psi"]
    assert psi["ae_trend_90d"] == pytest.approx(0.0, abs=1e-9) and psi["fraction"] == pytest.approx(
        0.0, abs=1e-9
    )
