"""Under-recording: the share of hospital-recorded long-term conditions also on the GP record, by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairness_data import fast_settings, synthetic_predictions, synthetic_selections

from riskstrat.evaluation.fairness import run_audit
from riskstrat.evaluation.groups import INSUFFICIENT, Grouping, assign_groups
from riskstrat.evaluation.recording import RECORDING_COLUMNS, RECORDING_TABLE_COLUMNS, gp_recording

UNDER_RECORDED = "Black"


def with_recording(predictions: pd.DataFrame, seed: int, missing_share: float = 0.5) -> pd.DataFrame:
    """Hospital-coded conditions for everyone; the GP record misses 5% of them, ``missing_share`` for one group."""
    rng = np.random.default_rng(seed)
    out = predictions.copy()
    coded = rng.poisson(0.6 + 0.4 * out["ltc_count"].to_numpy().clip(0, 4))
    missed = np.where(out["ethnic_group"].to_numpy() == UNDER_RECORDED, missing_share, 0.05)
    out["hospital_ltc_count"] = coded
    out["hospital_ltc_not_on_gp_record"] = rng.binomial(coded, missed)
    return out


@pytest.fixture(scope="module")
def recorded():
    predictions = with_recording(synthetic_predictions(n=10_000, seed=41), seed=42)
    frame, groupings = assign_groups(predictions)
    return frame, groupings, gp_recording(frame, groupings, fast_settings())


def test_a_group_whose_gp_record_misses_half_its_conditions_is_measured_as_under_recorded(recorded):
    _, _, table = recorded
    settings = fast_settings()
    row = table.set_index(["grouping", "group"]).loc[("ethnic_group", UNDER_RECORDED)]
    assert row["status"] == "ok"
    assert row["share"] < 0.7 * row["others_share"]
    assert row["ratio_lower"] <= row["ratio"] <= row["ratio_upper"] < settings.tolerances.gp_recording_ratio
    assert row["p_value"] < 0.001


def test_groups_recorded_like_everyone_else_give_no_evidence_of_under_recording(recorded):
    _, _, table = recorded
    fair = table[(table["grouping"] == "imd_quintile") & (table["status"] == "ok")]
    assert len(fair) == 5
    # Each quintile holds about a fifth of the under-recorded group, so each is a little below 1.
    assert fair["ratio"].between(0.85, 1.15).all(), fair[["group", "ratio"]]
    assert (fair["p_value"] > 0.05).all()
    ok = table[table["status"] == "ok"]
    assert ((ok["ratio_lower"] <= ok["ratio"]) & (ok["ratio"] <= ok["ratio_upper"])).all()


def test_people_are_counted_once_and_only_when_every_coded_condition_is_on_the_gp_record():
    frame = pd.DataFrame(
        {
            "g": ["a"] * 4 + ["b"] * 4,
            "hospital_ltc_count": [0, 1, 3, 2, 1, 1, 2, 0],
            "hospital_ltc_not_on_gp_record": [0, 0, 1, 0, 1, 0, 0, 0],
        }
    )

    raw = gp_recording(
        frame, [Grouping("g", "G", ("a", "b"))], fast_settings(min_cell_n=1, min_cell_events=1)
    )
    assert list(raw.columns) == list(RECORDING_TABLE_COLUMNS)
    table = raw.set_index("group")
    # a: 3 people with a hospital-coded condition, 2 with all of them at the GP; b: 3 and 2.
    assert table.loc["a", ["n_hospital_ltc", "n_also_gp"]].tolist() == [3, 2]
    assert table.loc["b", ["n_hospital_ltc", "n_also_gp"]].tolist() == [3, 2]
    assert table.loc["a", "ratio"] == pytest.approx(1.0)


def test_small_groups_are_shown_as_insufficient_and_not_judged(recorded):
    frame, groupings, _ = recorded
    table = gp_recording(frame, groupings, fast_settings(min_cell_n=5_000))
    assert (table["status"] == INSUFFICIENT).all()
    assert table["p_value"].isna().all() and table["n_hospital_ltc"].gt(0).any()


def test_without_the_recording_columns_the_table_is_empty(recorded):
    frame, groupings, _ = recorded
    table = gp_recording(frame.drop(columns=list(RECORDING_COLUMNS)), groupings, fast_settings())
    assert table.empty and list(table.columns) == list(RECORDING_TABLE_COLUMNS)


def test_the_audit_carries_the_measure_and_flags_the_under_recorded_group():
    predictions = with_recording(synthetic_predictions(n=6_000, seed=43), seed=44)
    settings = fast_settings()
    audit = run_audit(predictions, synthetic_selections(predictions), settings)
    assert audit.recording is not None
    row = audit.recording.set_index(["grouping", "group"]).loc[("ethnic_group", UNDER_RECORDED)]
    assert row["ratio_upper"] < settings.tolerances.gp_recording_ratio
    raised = {f.flag_id for f in audit.flags if f.status == "raised"}
    assert f"gp_recording:ethnic_group:{UNDER_RECORDED}" in raised
