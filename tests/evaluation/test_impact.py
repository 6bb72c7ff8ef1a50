"""The impact designs on small simulated cut-off records with a known jump (fast).

Each test simulates MDT lists at capacity with people just below the cut-off, an outcome
whose chance rises smoothly with risk and jumps by a known amount for listed people, and
checks the estimators recover it. Coverage over many seeds is measured by
``benchmarks/impact_coverage.py``, not asserted on one seed here.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from impact_data import WORDING, simulate
from statsmodels.stats.proportion import confint_proportions_2indep

from riskstrat.errors import SettingsError
from riskstrat.evaluation.disclosure import check_disclosed
from riskstrat.evaluation.impact import (
    NotEstimable,
    RdFit,
    _density,
    analysis_rows,
    first_time_share,
    impact_outcomes,
    impact_payload,
    lottery_comparison,
    matured_weeks,
    minimum_detectable_effect,
    newcombe_interval,
    no_history_payload,
    projected_lottery_mde,
    record_depths,
    regression_discontinuity,
    running_distance,
    taken_on,
    too_short_payload,
)
from riskstrat.evaluation.impact_settings import ImpactSettings
from riskstrat.features.settings import OutcomeSettings
from riskstrat.settings import load_settings


def _payload(assignments, outcomes, decisions=None, settings=None, **extra):
    settings = settings or ImpactSettings()
    rows = analysis_rows(assignments, outcomes, decisions, settings.running_variable)
    weeks = sorted({pd.Timestamp(w).date() for w in assignments["week"]})
    return impact_payload(
        rows,
        outcome_name="emergency_admission",
        wording=WORDING,
        settings=settings,
        weeks=weeks,
        weeks_recorded=len(weeks),
        mdts=sorted(assignments["mdt"].unique()),
        **extra,
    )


# ----------------------------------------------------------------------------- the analysis rows


def test_distance_is_positive_on_the_listed_side():
    rows = pd.DataFrame(
        {"probability": [0.5, 0.4, 0.3], "cutoff_probability": 0.4, "capacity": 2, "eligible_rank": [1, 2, 3]}
    )
    assert running_distance(rows, "risk").round(6).tolist() == [0.1, 0.0, -0.1]
    assert running_distance(rows, "rank").tolist() == [1.5, 0.5, -0.5]
    with pytest.raises(ValueError, match="rank"):
        running_distance(rows, "age")


def test_each_person_enters_once_at_their_first_week():
    assignments, outcomes, _ = simulate(0.0, weeks=6, repeat_share=0.3, seed=4)
    rows = analysis_rows(assignments, outcomes, None, "risk")
    assert rows.rd["person_id"].is_unique
    first_week = (
        assignments.assign(week=pd.to_datetime(assignments["week"])).groupby("person_id")["week"].min()
    )
    chosen = rows.rd.set_index("person_id")["week"].map(pd.Timestamp)
    assert (chosen == first_week.loc[chosen.index]).all()
    assert rows.left_out["later_weeks"] == len(assignments) - assignments["person_id"].nunique() > 0


def test_lottery_pool_rows_leave_the_discontinuity_and_form_the_lottery():
    assignments, outcomes, _ = simulate(0.0, weeks=3, lottery=True, seed=5)
    rows = analysis_rows(assignments, outcomes, None, "rank")
    pool_ids = set(assignments.loc[assignments["lottery_pool"], "person_id"])
    assert not pool_ids & set(rows.rd["person_id"])
    assert set(rows.lottery["person_id"]) == pool_ids
    assert rows.lottery["won"].sum() == 5 * 4 * 3  # 5 places, 4 MDTs, 3 weeks
    assert ((rows.rd["x"] >= 0) == rows.rd["listed"]).all()


def test_rows_tied_with_the_cutoff_on_the_wrong_side_are_left_out_and_counted():
    assignments, outcomes, _ = simulate(0.0, weeks=1, mdts=1, seed=6)
    tied = assignments["eligible_rank"] == 51
    assignments.loc[tied, "probability"] = assignments.loc[tied, "cutoff_probability"]
    rows = analysis_rows(assignments, outcomes, None, "risk")
    assert rows.left_out["tied_at_cutoff"] == 1
    assert len(rows.rd) == len(assignments) - 1


def test_only_weeks_whose_follow_up_has_ended_mature():
    assignments, _, _ = simulate(0.0, weeks=20, mdts=1, seed=7)
    weeks = matured_weeks(assignments, date(2025, 6, 1), 90)
    # data date = Sunday before the week; matured when data date + 90 days <= 1 June 2025
    assert weeks and all(w - timedelta(days=1) + timedelta(days=90) <= date(2025, 6, 1) for w in weeks)
    assert len(weeks) < 20


def test_taken_on_counts_only_lists_that_came_back():
    rows = pd.DataFrame(
        {"mdt": ["A", "A", "B"], "week": [date(2025, 1, 6)] * 3, "person_id": ["p1", "p2", "p3"]}
    )
    decisions = pd.DataFrame(
        {"mdt": ["A"], "week": ["2025-01-06"], "person_id": ["p1"], "decision": ["added_to_caseload"]}
    )
    taken = taken_on(rows, decisions)
    assert taken.iloc[0] == 1 and taken.iloc[1] == 0 and np.isnan(taken.iloc[2])


# ----------------------------------------------------------------------------- the designs


@pytest.mark.parametrize("running_variable", ["risk", "rank"])
def test_the_discontinuity_interval_covers_a_known_jump(running_variable):
    assignments, outcomes, _ = simulate(-0.12, seed=1, mdts=6, weeks=20)
    rows = analysis_rows(assignments, outcomes, None, running_variable)
    fit = regression_discontinuity(rows.rd)
    assert fit.lower < -0.12 < fit.upper
    if running_variable == "risk":  # the outcome follows risk; in rank it is noisier
        assert fit.upper < 0  # a jump this size is found
    assert fit.n_below > 0 and fit.n_above > 0 and fit.bandwidth > 0
    assert fit.estimate == pytest.approx(fit.intercept_above - fit.intercept_below, abs=1e-9)


def test_with_no_jump_the_interval_covers_zero():
    assignments, outcomes, _ = simulate(0.0, seed=2, mdts=6, weeks=20)
    fit = regression_discontinuity(analysis_rows(assignments, outcomes, None, "risk").rd)
    assert fit.lower < 0 < fit.upper
    assert fit.vce == "CR1" and fit.clusters == 6 * 20


def test_the_fuzzy_discontinuity_scales_the_jump_by_the_share_taken_on():
    # Half of the listed are taken on and the whole jump is theirs: the effect of being taken on is twice the jump.
    assignments, outcomes, decisions = simulate(0.0, seed=3, mdts=6, weeks=20, taken_share=0.5)
    taken = (
        decisions.loc[decisions["decision"] == "added_to_caseload", ["person_id"]]
        .assign(t=1)
        .drop_duplicates("person_id")
    )
    merged = assignments.merge(taken, on="person_id", how="left")
    rng = np.random.default_rng(30)
    chance = 0.8 * merged["probability"] - 0.24 * merged["t"].fillna(0)
    outcomes = merged[["person_id", "data_date"]].assign(
        event=(rng.uniform(size=len(merged)) < chance).astype(int)
    )
    rows = analysis_rows(assignments, outcomes, decisions, "risk")
    fuzzy = regression_discontinuity(rows.rd, fuzzy=True)
    assert fuzzy.first_stage is not None
    assert fuzzy.first_stage[1] < 0.5 < fuzzy.first_stage[2]
    assert fuzzy.lower < -0.24 < fuzzy.upper


def test_too_few_people_is_not_estimable():
    assignments, outcomes, _ = simulate(0.0, mdts=1, weeks=1, capacity=5, below=5)
    with pytest.raises(NotEstimable, match="too few"):
        regression_discontinuity(analysis_rows(assignments, outcomes, None, "risk").rd)


def test_newcombe_interval_matches_statsmodels():
    low, high = newcombe_interval(30, 100, 45, 110)
    expected = confint_proportions_2indep(30, 100, 45, 110, method="newcomb", compare="diff")
    assert (low, high) == pytest.approx(expected, abs=1e-9)


def test_the_lottery_recovers_a_known_effect_and_its_instrumental_ratio():
    assignments, outcomes, decisions = simulate(
        -0.15, seed=8, mdts=6, weeks=40, lottery=True, taken_share=0.5
    )
    rows = analysis_rows(assignments, outcomes, decisions, "risk")
    result = lottery_comparison(rows.lottery)
    assert result.lower < -0.15 < result.upper and result.upper < 0
    assert result.taken_losers == 0 and 0.4 < result.taken_winners < 0.6
    ratio, low, high, _ = result.iv
    assert low < ratio < high and ratio == pytest.approx(result.difference / result.taken_winners, rel=1e-6)


def test_minimum_detectable_effect_is_2_8_standard_errors():
    assert minimum_detectable_effect(0.01) == pytest.approx(0.028, abs=2e-4)
    projected = projected_lottery_mde(draws=100, places=5, pool=10, first_time_share=1.0, baseline=0.3)
    assert projected["winners"] == projected["losers"] == 500
    assert projected["mde"] == pytest.approx(2.8 * np.sqrt(0.21 * (2 / 500)), rel=1e-3)


def test_first_time_share_counts_a_person_in_the_pool_ranks_once():
    # Capacity 10, places 2, pool 4: pool ranks 9-12. A is there twice, B once; C is ranked above.
    rows = pd.DataFrame(
        {
            "week": [
                date(2025, 1, 6),
                date(2025, 1, 6),
                date(2025, 1, 6),
                date(2025, 1, 13),
                date(2025, 1, 13),
            ],
            "mdt": "M",
            "person_id": ["A", "B", "C", "A", "C"],
            "eligible_rank": [9, 12, 1, 10, 2],
            "capacity": 10,
        }
    )
    assert first_time_share(rows, places=2, pool=4) == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- the payload


def test_the_payload_is_disclosed_and_holds_no_person():
    assignments, outcomes, decisions = simulate(-0.12, seed=1, mdts=6, weeks=20, taken_share=0.5)
    payload = _payload(
        assignments,
        outcomes,
        decisions,
        lottery_settings={"places": 5, "pool": 10},
        draws=120,
        pool_first_time_share=1.0,
    )
    check_disclosed(payload)
    text = json.dumps(payload)
    assert not any(pid in text for pid in ('"p1"', '"p2"', "p10"))
    assert payload["status"] == "estimated"
    rd = payload["rd"]
    assert rd["lower"] < rd["estimate"] < rd["upper"]
    assert "percentage points" in rd["sentence"] and "could detect a reduction of" in rd["mde_sentence"]
    assert payload["fuzzy"]["first_stage"] == pytest.approx(0.5, abs=0.15)
    assert payload["projected_lottery"]["mde"] > 0
    assert {b["side"] for b in rd["bins"]} == {"below", "above"}
    # The summary leads with the interval's verdict (a jump of -12 points is found here).
    assert payload["summary"].startswith("Fewer events: being listed changed the chance")
    assert "excludes no effect" in payload["summary"]
    assert payload["interval"] == "95%" and payload["simulated_weeks"] == 0


def test_a_lottery_leads_the_summary_when_it_is_on():
    assignments, outcomes, _ = simulate(-0.1, seed=10, mdts=6, weeks=20, lottery=True)
    payload = _payload(assignments, outcomes)
    assert payload["lottery"] is not None and payload["projected_lottery"] is None
    assert "winning a place in the lottery" in payload["summary"].split(":")[1]


def test_too_few_people_near_the_cutoff_says_so():
    assignments, outcomes, _ = simulate(0.0, mdts=1, weeks=2, seed=11)
    payload = _payload(assignments, outcomes, settings=ImpactSettings(min_people_near_cutoff=5000))
    assert payload["status"] == "too_few" and "too few people" in payload["rd_problem"]
    assert payload["summary"].startswith("Not enough people near the cut-off yet")


def test_too_short_history_says_how_many_weeks_exist_and_are_needed():
    payload = too_short_payload("emergency_admission", WORDING, 5, 3, ImpactSettings(min_weeks=8))
    assert (
        "5 weeks of lists recorded, 3 with their 90-day follow-up ended; 8 are needed" in payload["summary"]
    )


# ----------------------------------------------------------------------------- outcomes and settings


def test_outcomes_count_the_window_after_the_data_date_only():
    patients = pa.table(
        {
            "person_id": ["a", "b", "c", "d"],
            "date_of_death": pa.array([None, None, date(2025, 1, 20), None], pa.date32()),
        }
    )
    spells = pa.table(
        {
            "person_id": ["a", "b", "d"],
            "admission_date": pa.array([date(2025, 1, 1), date(2025, 1, 10), date(2025, 4, 1)], pa.date32()),
            "admission_method": ["21", "21", "21"],
        }
    )
    tables = {"patients": ibis.memtable(patients), "apc_spells": ibis.memtable(spells)}
    pairs = pd.DataFrame({"person_id": ["a", "b", "c", "d"], "data_date": [date(2025, 1, 1)] * 4})
    events = impact_outcomes(tables, pairs, "emergency_admission", OutcomeSettings(), 30).set_index(
        "person_id"
    )
    # a: admitted on the data date (the past); b: in the window; c: died in it (counts); d: after it.
    assert events["event"].to_dict() == {"a": 0, "b": 1, "c": 1, "d": 0}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("horizon_days: 3\n", "horizon_days"),
        ("running_variable: age\n", "running_variable"),
        ("power: 0.3\n", "power"),
        ("min_weeks: 0\n", "min_weeks"),
    ],
)
def test_invalid_impact_settings_fail_naming_the_key(tmp_path, text, key):
    path = tmp_path / "impact.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path, ImpactSettings)
    assert key in str(error.value) and "impact.yaml" in str(error.value)


# ----------------------------------------------------------------------------- review fixes


def test_record_depth_is_the_distance_to_the_lowest_recorded_person_of_each_list():
    rows = pd.DataFrame(
        {
            "cluster": ["a", "a", "a", "a", "b", "b", "b"],
            "probability": [0.6, 0.5, 0.45, 0.38, 0.7, 0.4, 0.39],
            "cutoff_probability": [0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4],
            "capacity": [2, 2, 2, 2, 2, 2, 2],
            "eligible_rank": [1, 2, 3, 4, 1, 2, 3],
        }
    )
    risk = record_depths(rows, "risk").set_index("cluster").round(6)
    assert risk.loc["a"].tolist() == [0.12, 0.1] and risk.loc["b"].tolist() == [0.01, 0.3]
    rank = record_depths(rows, "rank").set_index("cluster")
    assert rank.loc["a"].tolist() == [1.5, 1.5] and rank.loc["b"].tolist() == [0.5, 1.5]


def test_the_bandwidth_never_reaches_past_the_recorded_people_below_the_cutoff():
    # Only 12 people are recorded below each cut-off: the MSE-optimal bandwidth runs past them.
    assignments, outcomes, _ = simulate(-0.12, seed=5, mdts=6, weeks=20, below=12)
    rows = analysis_rows(assignments, outcomes, None, "risk")
    cap = rows.bandwidth_cap()
    depth = running_distance(assignments, "risk").groupby([assignments["mdt"], assignments["week"]]).min()
    assert cap == pytest.approx(float(-depth.max()))
    uncapped = regression_discontinuity(rows.rd)
    fit = regression_discontinuity(rows.rd, max_bandwidth=cap)
    assert uncapped.bandwidth > cap  # the situation the cap is for
    assert fit.bandwidth == pytest.approx(cap) and fit.bandwidth_mse == pytest.approx(uncapped.bandwidth)
    # Every person within the bandwidth of every list was recorded: the below side is complete.
    assert fit.n_below == int(((rows.rd["x"] < 0) & (rows.rd["x"] >= -cap)).sum())
    payload = _payload(assignments, outcomes)
    rd = payload["rd"]
    assert rd["bandwidth_capped"] and rd["bandwidth"] == pytest.approx(cap, abs=1e-6)
    assert "is capped at the shallowest list's depth" in rd["bandwidth_cap_words"]
    assert rd["density"]["sentence"].startswith("Within the bandwidth,")
    # The plot's bins stay within the bandwidth, four a side.
    assert all(abs(b["x"]) <= cap for b in rd["bins"])
    assert {b["side"] for b in rd["bins"]} == {"below", "above"} and len(rd["bins"]) <= 8


def test_in_rank_distance_the_record_depth_is_people_below_less_a_half():
    assignments, outcomes, _ = simulate(-0.12, seed=5, mdts=6, weeks=20, below=12)
    rows = analysis_rows(assignments, outcomes, None, "rank")
    assert rows.bandwidth_cap() == 11.5
    fit = regression_discontinuity(rows.rd, max_bandwidth=3.5)
    assert fit.bandwidth == 3.5 and fit.bandwidth_mse > 3.5 and fit.bandwidth_cap == 3.5
    assert fit.n_below == int(((rows.rd["x"] < 0) & (rows.rd["x"] >= -3.5)).sum())


def test_an_uneven_split_near_the_cutoff_raises_the_caution():
    fit = RdFit(
        estimate=-0.04,
        lower=-0.1,
        upper=0.02,
        se=0.03,
        bandwidth=0.038,
        n_below=430,
        n_above=70,
        events_below=40,
        events_above=5,
        intercept_below=0.1,
        slope_below=0.0,
        intercept_above=0.06,
        slope_above=0.0,
        vce="CR1",
        clusters=50,
    )
    record = pd.DataFrame(
        {"cluster": "a", "x": np.r_[np.linspace(-0.03, -0.001, 500), np.linspace(0, 0.03, 480)]}
    )
    density = _density(fit, record, {"a"})
    assert density["uneven"] and density["recorded_below"] == 500 and density["recorded_above"] == 480
    assert "430 people are below the cut-off and 70 above at their first week" in density["sentence"]
    assert (
        "unevenly split: the first-time rule or the record depth may bias the estimate" in density["sentence"]
    )
    even = _density(RdFit(**{**fit.__dict__, "n_below": 250, "n_above": 240}), record, {"a"})
    assert not even["uneven"] and "unevenly" not in even["sentence"]


def test_the_summary_says_no_clear_effect_when_the_interval_includes_zero():
    assignments, outcomes, _ = simulate(0.0, seed=2, mdts=6, weeks=20)
    payload = _payload(assignments, outcomes)
    assert payload["rd"]["lower"] < 0 < payload["rd"]["upper"]
    assert payload["summary"].startswith("No clear effect: being listed changed the chance of")
    assert "includes no effect)" in payload["summary"]


def test_interval_and_power_words_follow_the_settings():
    assignments, outcomes, _ = simulate(-0.12, seed=1, mdts=6, weeks=20)
    payload = _payload(assignments, outcomes, settings=ImpactSettings(alpha=0.1, power=0.9))
    assert "(90% interval" in payload["summary"] and "95%" not in payload["summary"]
    assert "(90% interval" in payload["rd"]["sentence"]
    assert "(90% power, 10% two-sided)" in payload["rd"]["mde_sentence"]


def test_simulated_weeks_are_said_in_the_summary():
    assignments, outcomes, _ = simulate(-0.12, seed=1, mdts=6, weeks=20)
    payload = _payload(assignments, outcomes, simulated_weeks=20)
    assert payload["simulated_weeks"] == 20
    assert payload["summary"].endswith(
        "20 of these weeks are a simulated past deployment on synthetic data (its true effect is set in "
        "configs/synthetic.yaml)."
    )


def test_an_outcome_no_mdt_ranks_by_says_there_is_no_cutoff():
    payload = no_history_payload("frequent_attendance", WORDING, ImpactSettings(), ranked=False)
    assert payload["status"] == "no_history"
    assert payload["summary"] == (
        "No MDT ranks its list by frequent_attendance (configs/mdts.yaml outcome), so there is no cut-off "
        "to evaluate."
    )
