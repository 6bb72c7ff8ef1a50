"""Realised performance: O/E by decile, practice and MDT recomputed plainly, intervals, AUROC and alarms."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.monitoring_settings import RealisedSettings
from riskstrat.evaluation.realised import (
    auroc_delong,
    expected_within,
    poisson_interval,
    realised_alarms,
    realised_performance,
)

SETTINGS = RealisedSettings()
WEEK = date(2025, 6, 2)


def _week(n: int = 5_000, seed: int = 0, under: float = 1.0) -> pd.DataFrame:
    """A scored week: events drawn at ``under`` x the stated risk (1 = calibrated)."""
    rng = np.random.default_rng(seed)
    expected = rng.beta(1, 9, n)
    event = (rng.random(n) < np.clip(under * expected, 0, 1)).astype(int)
    practices = rng.choice(["M85001", "M85002", "M85003", "M85004"], n)
    mdt = pd.Series(practices).map({"M85001": "North", "M85002": "North", "M85003": "South"})  # M85004: none
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "practice_code": practices,
            "mdt": mdt,
            "expected": expected,
            "event": event,
        }
    )


def test_expected_within_assumes_a_constant_hazard():
    p = np.array([0.0, 0.5, 0.2, 1.0])
    assert np.allclose(expected_within(p, 365, 365), p)
    assert np.allclose(expected_within(p, 90, 365), 1 - (1 - p) ** (90 / 365))
    # Two halves of the horizon compose to the whole.
    half = expected_within(p, 180, 360)
    assert np.allclose(1 - (1 - half) ** 2, p)


def test_poisson_interval_is_garwoods():
    assert poisson_interval(0) == pytest.approx((0.0, 3.6889), abs=1e-4)
    assert poisson_interval(10) == pytest.approx((4.7954, 18.3904), abs=1e-4)


def test_oe_by_decile_practice_and_mdt_match_a_plain_recomputation():
    frame = _week()
    result = realised_performance(frame, SETTINGS)
    # Deciles the plain way: sort by expected risk (ties by row order), ten equal slices.
    order = np.argsort(frame["expected"].to_numpy(), kind="stable")
    for k, rows in enumerate(np.array_split(order, 10), start=1):
        got = result["by_decile"][k - 1]
        assert got["decile"] == k and got["n"] == len(rows)
        observed = frame["event"].to_numpy()[rows].sum()
        expected = frame["expected"].to_numpy()[rows].sum()
        assert got["events"] == observed
        assert got["expected"] == pytest.approx(expected)
        assert got["oe"] == pytest.approx(observed / expected)
    for key, column in (("by_practice", "practice_code"), ("by_mdt", "mdt")):
        plain = frame.assign(mdt=frame["mdt"].fillna("(no MDT)")).groupby(column)[["event", "expected"]].sum()
        got = {row[column]: row for row in result[key]}
        assert set(got) == set(plain.index)
        for name, row in plain.iterrows():
            assert got[name]["events"] == row["event"]
            assert got[name]["oe"] == pytest.approx(row["event"] / row["expected"])
    overall = result["overall"]
    assert overall["n"] == len(frame) and overall["events"] == frame["event"].sum()
    assert overall["oe"] == pytest.approx(frame["event"].sum() / frame["expected"].sum())
    assert overall["oe_low"] < overall["oe"] < overall["oe_high"]
    assert overall["auroc"] == pytest.approx(roc_auc_score(frame["event"], frame["expected"]))


def test_the_result_holds_no_person_id():
    text = repr(realised_performance(_week(n=500), SETTINGS))
    assert "p1" not in text and "person_id" not in text


def test_delong_interval_matches_a_bootstrap_spread():
    frame = _week(n=4_000, seed=3)
    y, s = frame["event"].to_numpy(), frame["expected"].to_numpy()
    _, low, high = auroc_delong(y, s)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(300):
        i = rng.integers(0, len(y), len(y))
        boots.append(roc_auc_score(y[i], s[i]))
    assert (high - low) / (2 * 1.96) == pytest.approx(np.std(boots), rel=0.2)
    assert all(np.isnan(auroc_delong(np.zeros(5), np.arange(5.0))))  # no events: no AUROC


def test_a_calibrated_week_raises_no_alarm():
    result = realised_performance(_week(seed=4), SETTINGS)
    assert (
        realised_alarms(result, WEEK, 365, SETTINGS, outcome="emergency_admission", reference_auroc=0.6) == []
    )


def test_under_prediction_raises_a_warning_overall_and_per_mdt():
    result = realised_performance(_week(n=20_000, seed=5, under=1.6), SETTINGS)
    alarms = realised_alarms(result, WEEK, 90, SETTINGS, outcome="emergency_admission")
    subjects = {a.subject for a in alarms}
    assert "emergency_admission" in subjects and "emergency_admission:North" in subjects
    overall = next(a for a in alarms if a.subject == "emergency_admission")
    assert overall.level == "warning" and "under-predicts" in overall.message
    assert overall.message.startswith("emergency_admission, week 2025-06-02, 90 days: ")


def test_a_fall_in_auroc_below_the_champions_raises_a_warning():
    frame = _week(n=20_000, seed=6)
    rng = np.random.default_rng(6)
    frame["event"] = (rng.random(len(frame)) < frame["expected"].mean()).astype(int)  # unrelated to risk
    result = realised_performance(frame, SETTINGS)
    alarms = realised_alarms(result, WEEK, 365, SETTINGS, outcome="emergency_admission", reference_auroc=0.75)
    assert [a.figures.get("reference_auroc") for a in alarms if "auroc" in a.figures] == [0.75]


def test_probabilities_outside_zero_one_are_refused_without_the_id_in_the_log():
    frame = _week(n=50)
    frame.loc[3, "expected"] = 1.5
    with pytest.raises(RiskstratError) as error:
        realised_performance(frame, SETTINGS)
    assert "1 rows" in str(error.value) and "p3" not in str(error.value)
    assert "p3" in error.value.message


def test_alarm_counts_pass_disclosure_control():
    from riskstrat.evaluation.disclosure import undisclosed_counts

    over = {"mdt": "North", "n": 400, "events": 3, "expected": 30.0, "oe": 0.1, "low": 0.02, "high": 0.29}
    result = {
        "overall": {"n": 400, "events": 3, "expected": 30.0, "oe": 0.1, "oe_low": 0.02, "oe_high": 0.29},
        "by_mdt": [over],
    }
    alarms = realised_alarms(result, WEEK, 90, SETTINGS, outcome="emergency_admission")
    assert len(alarms) == 2
    for alarm in alarms:
        assert "1 to 7 events observed" in alarm.message and "O/E not shown" in alarm.message
        assert alarm.figures["events"] == "*" and alarm.figures["oe"] == "*"
        assert undisclosed_counts(alarm.as_dict()) == []
    big = realised_performance(_week(n=20_000, seed=5, under=1.6), SETTINGS)
    for alarm in realised_alarms(big, WEEK, 90, SETTINGS, outcome="emergency_admission"):
        assert alarm.figures["events"] % 5 == 0
        assert undisclosed_counts(alarm.as_dict()) == []
