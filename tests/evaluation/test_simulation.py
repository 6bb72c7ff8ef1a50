"""The error-rate simulation: outcomes re-drawn from known probabilities, judged by the audit's and the gates' own code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairness_data import fast_settings, synthetic_predictions, synthetic_selections

from riskstrat.evaluation.simulation import (
    Population,
    draw,
    null_table,
    simulate_audits,
    simulate_gates,
    slope_probabilities,
    under_prediction,
    upper_bound,
)
from riskstrat.models.metrics import calibration_intercept_slope
from riskstrat.models.settings import EvaluationSettings, PromotionSettings

NULL_AUDITS = 40
"""Null audits in the slow test: enough for a one-sided bound on the share with a false flag."""

DOCUMENTED_FALSE_FLAG_BOUND = 0.10
"""docs/governance.md: under the null, at most 10% of audits raise any flag (measured about 0-5%)."""


@pytest.fixture(scope="module")
def population() -> Population:
    predictions = synthetic_predictions(n=6_000, seed=21)
    return Population(predictions, synthetic_selections(predictions))


def test_a_draw_keeps_predictions_and_lists_and_redraws_outcomes(population):
    drawn = draw(population, fast_settings(), np.random.default_rng(1))
    np.testing.assert_array_equal(drawn.predictions["p"], population.predictions["p"])
    np.testing.assert_array_equal(drawn.selections["selected"], population.selections["selected"])
    assert not np.array_equal(drawn.predictions["y"], population.predictions["y"])
    # The lists' outcomes are the re-drawn ones, person by person.
    by_person = drawn.predictions.set_index("person_id")["y"]
    assert (drawn.selections.set_index("person_id")["y"] == by_person).all()
    # Under the null the model is calibrated: observed events match expected within noise.
    expected = drawn.predictions["p"].sum()
    assert abs(drawn.predictions["y"].sum() - expected) < 4 * np.sqrt(expected)


def test_need_is_shuffled_only_among_people_of_nearly_the_same_risk(population):
    drawn = draw(population, fast_settings(), np.random.default_rng(2))
    before = population.predictions.assign(band=pd.qcut(population.predictions["p"].rank(method="first"), 50))
    after = drawn.predictions.assign(band=before["band"].to_numpy())
    # Each band holds the same need values as before (a permutation within it), yet rows moved.
    for measure in ("ltc_count", "bed_days_next_year"):
        assert (
            before.groupby("band", observed=True)[measure].sum()
            == after.groupby("band", observed=True)[measure].sum()
        ).all()
    assert not np.array_equal(drawn.predictions["ltc_count"], population.predictions["ltc_count"])


def test_under_prediction_scenario_raises_the_groups_true_risk_only(population):
    scenario = under_prediction("ethnic_group", "Asian", 2.0)
    rng = np.random.default_rng(3)
    draws = [draw(population, fast_settings(), rng, scenario).predictions for _ in range(5)]
    frame = pd.concat(draws)
    asian = frame["ethnic_group"] == "Asian"
    oe_asian = frame.loc[asian, "y"].sum() / frame.loc[asian, "p"].sum()
    oe_others = frame.loc[~asian, "y"].sum() / frame.loc[~asian, "p"].sum()
    assert 1.7 < oe_asian < 2.3
    assert 0.9 < oe_others < 1.1


def test_the_audit_detects_a_doubled_risk(population):
    scenario = under_prediction("ethnic_group", "Asian", 2.0)
    found = simulate_audits(population, fast_settings(), 2, seed=4, scenario=scenario)
    assert all(r.detected for r in found)


def test_slope_probabilities_have_the_asked_slope_and_the_same_expected_events():
    p = synthetic_predictions(n=200_000, seed=5)["p"].to_numpy()
    true_p = slope_probabilities(p, 0.8)
    assert true_p.sum() == pytest.approx(p.sum(), rel=1e-6)
    y = (np.random.default_rng(6).random(len(p)) < true_p).astype(int)
    _, slope = calibration_intercept_slope(y, p)
    assert slope == pytest.approx(0.8, abs=0.04)


def test_gate_simulation_refuses_a_grossly_miscalibrated_model_and_passes_a_calibrated_one():
    p = synthetic_predictions(n=6_000, seed=8)["p"].to_numpy()
    table = simulate_gates(
        p, PromotionSettings(), EvaluationSettings(n_boot=30), 4, seed=9, true_oe=(1.0, 1.6), true_slopes=()
    ).set_index("true_value")
    assert table.loc[1.0, "error"] == "false refusal" and table.loc[1.0, "refused"] == 0
    assert table.loc[1.6, "error"] == "false acceptance" and table.loc[1.6, "refused"] == 4
    assert table.loc[1.6, "error_rate"] == 0.0
    assert table.loc[1.0, "error_lower"] <= table.loc[1.0, "error_rate"] <= table.loc[1.0, "error_upper"]


def test_null_table_counts_audits_with_a_false_flag(population):
    found = simulate_audits(population, fast_settings(), 2, seed=10)
    table = null_table(found).set_index("kind")
    assert (table["replicates"] == 2).all()
    assert {"any kind", "fairness gate (open flags)", "calibration_oe"} <= set(table.index)
    row = table.loc["any kind"]
    assert row["share_lower"] <= row["share"] <= row["share_upper"]


def test_upper_bound_is_one_sided_clopper_pearson():
    assert upper_bound(0, 40) == pytest.approx(1 - 0.05 ** (1 / 40))
    assert upper_bound(40, 40) == 1.0


@pytest.mark.slow
def test_null_audits_keep_the_false_flag_rate_within_the_documented_bound():
    """A perfectly calibrated, fair model: few audits may raise any flag, whatever the kind.

    Fails only when the data show the rate is above the bound: the one-sided 99.9% lower
    confidence bound of the observed share must not exceed it (a test that does not flake
    when the rule holds, and fails when false flags are common).
    """
    predictions = synthetic_predictions(n=6_000, seed=31)
    population = Population(predictions, synthetic_selections(predictions))
    found = simulate_audits(population, fast_settings(), NULL_AUDITS, seed=32)
    row = null_table(found).set_index("kind").loc["any kind"]
    flagged = int(row["audits_with_one_or_more"])
    # Lower one-sided bound = 1 - upper bound of the complement.
    lower = 1 - upper_bound(NULL_AUDITS - flagged, NULL_AUDITS, 0.999)
    assert lower <= DOCUMENTED_FALSE_FLAG_BOUND, f"{flagged} of {NULL_AUDITS} null audits raised a flag"
