from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from fairlearn.metrics import MetricFrame, false_negative_rate, selection_rate, true_positive_rate
from fairness_data import fast_settings, synthetic_predictions, synthetic_selections
from scipy.special import logit
from sklearn.metrics import average_precision_score, brier_score_loss, precision_score, roc_auc_score

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.fairness import (
    ALL_MDTS,
    Flag,
    _explain_sensitivity,
    open_flags,
    run_audit,
)
from riskstrat.evaluation.groups import INSUFFICIENT
from riskstrat.evaluation.settings import AcceptedFlag, FairnessSettings


def _cell(table, grouping, group, **where):
    rows = table[(table["grouping"] == grouping) & (table["group"] == group)]
    for key, value in where.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1
    return rows.iloc[0]


def test_group_performance_agrees_with_scikit_learn(null_audit, null_predictions):
    frame = null_predictions
    for group in ("White", "Asian"):
        rows = frame[frame["ethnic_group"] == group]
        cell = _cell(null_audit.performance, "ethnic_group", group)
        assert cell["n"] == len(rows)
        assert cell["events"] == rows["y"].sum()
        assert cell["auroc"] == pytest.approx(roc_auc_score(rows["y"], rows["p"]))
        assert cell["auprc"] == pytest.approx(average_precision_score(rows["y"], rows["p"]))
        assert cell["brier"] == pytest.approx(brier_score_loss(rows["y"], rows["p"]))
        assert cell["oe_ratio"] == pytest.approx(rows["y"].sum() / rows["p"].sum())
        assert cell["auroc_lower"] < cell["auroc"] < cell["auroc_upper"]
        z = logit(rows["p"].to_numpy())
        slope = (
            sm.GLM(rows["y"].to_numpy(), sm.add_constant(z), family=sm.families.Binomial()).fit().params[1]
        )
        intercept = sm.GLM(
            rows["y"].to_numpy(), np.ones((len(z), 1)), family=sm.families.Binomial(), offset=z
        ).fit()
        assert cell["calibration_slope"] == pytest.approx(slope, rel=1e-4)
        assert cell["calibration_intercept"] == pytest.approx(intercept.params[0], abs=1e-4)


def test_group_metrics_agree_with_fairlearn_metric_frame(null_audit, null_predictions):
    frame = null_predictions
    mf = MetricFrame(
        metrics={"auroc": roc_auc_score, "brier": brier_score_loss},
        y_true=frame["y"],
        y_pred=frame["p"],
        sensitive_features=frame["imd_quintile"].astype(str),
    )
    for quintile in "12345":
        cell = _cell(null_audit.performance, "imd_quintile", quintile)
        assert cell["auroc"] == pytest.approx(mf.by_group.loc[quintile, "auroc"])
        assert cell["brier"] == pytest.approx(mf.by_group.loc[quintile, "brier"])


def test_list_metrics_agree_with_fairlearn(null_audit, null_predictions):
    selections = synthetic_selections(null_predictions)
    mf = MetricFrame(
        metrics={
            "selection": selection_rate,
            "tpr": true_positive_rate,
            "fnr": false_negative_rate,
            "ppv": lambda y, s: precision_score(y, s, zero_division=0),
        },
        y_true=selections["y"],
        y_pred=selections["selected"].astype(int),
        sensitive_features=selections["ethnic_group"],
    )
    for group in ("White", "Asian"):
        cell = _cell(null_audit.lists, "ethnic_group", group, mdt=ALL_MDTS)
        assert cell["selection_rate"] == pytest.approx(mf.by_group.loc[group, "selection"])
        assert cell["sensitivity"] == pytest.approx(mf.by_group.loc[group, "tpr"])
        assert cell["false_negative_rate"] == pytest.approx(mf.by_group.loc[group, "fnr"])
        assert cell["ppv"] == pytest.approx(mf.by_group.loc[group, "ppv"])
        rows = selections[selections["ethnic_group"] == group]
        not_listed = rows[~rows["selected"]]
        assert cell["false_omission_rate"] == pytest.approx(not_listed["y"].mean())
        assert cell["share_of_list"] == pytest.approx(rows["selected"].sum() / selections["selected"].sum())
        assert cell["share_of_outcomes"] == pytest.approx(rows["y"].sum() / selections["y"].sum())


def test_lists_are_reported_per_mdt(null_audit):
    assert set(null_audit.lists["mdt"]) == {ALL_MDTS, "North", "South"}


def test_calibrated_model_without_bias_raises_no_real_flag(null_audit):
    raised = [f for f in null_audit.flags if f.status == "raised"]
    assert raised == [], [f.sentence for f in raised]
    assert null_audit.findings == []
    assert open_flags(null_audit, null_audit.settings) == []
    # Chance puts some estimates beyond a tolerance; they are counted, not handed over as flags.
    assert {f.status for f in null_audit.flags} <= {"raised", "explained"}
    control = null_audit.error_control["kinds"]
    assert sum(k["beyond_tolerance_not_significant"] for k in control.values()) > 0
    assert control["calibration_oe"]["checks"] > 30 and control["need_at_equal_risk"]["checks"] > 100


def test_under_recorded_group_is_flagged_for_calibration_and_need(scenario_audit):
    raised = {f.flag_id: f for f in scenario_audit.flags if f.status == "raised"}
    oe = raised["calibration_oe:ethnic_group:Black"]
    assert oe.lower > 1.25
    assert "under-estimates risk" in oe.sentence and "a real gap, not noise" in oe.sentence
    assert "need_at_equal_risk:ethnic_group:Black:emergency_admissions_next_year" in raised
    assert not any(f.group == "White" and f.grouping == "ethnic_group" for f in raised.values())
    # Ranked by realised hospital need, the group would take a larger share of the list.
    ranking = _cell(scenario_audit.need_ranking, "ethnic_group", "Black")
    assert ranking["share_by_emergency_admissions_next_year"] > ranking["share_by_risk"]


def test_open_flags_block_until_accepted_with_a_reason(scenario_audit):
    blocking = open_flags(scenario_audit, scenario_audit.settings)
    assert "calibration_oe:ethnic_group:Black" in {f.flag_id for f in blocking}
    accepted = fast_settings(
        accepted_flags=[
            AcceptedFlag(
                flag_id=f.flag_id,
                reason="Known coding gap; recording project under way.",
                accepted_by="Governance board",
                date="2025-01-15",
            )
            for f in blocking
        ]
    )
    assert open_flags(scenario_audit, accepted) == []


def test_small_groups_are_reported_as_insufficient_data_not_dropped():
    predictions = synthetic_predictions(n=3_000, seed=3)
    predictions.loc[predictions.index[:4], "ethnic_group"] = "Other"
    predictions.loc[predictions["ethnic_group"] == "Other", "ethnic_group"] = "Mixed"
    predictions.loc[predictions.index[:4], "ethnic_group"] = "Other"
    audit = run_audit(predictions, synthetic_selections(predictions), fast_settings(bootstrap_n=20))
    groups = audit.performance[audit.performance["grouping"] == "ethnic_group"]
    assert set(groups["group"]) == {"Asian", "Black", "Mixed", "White", "Other", "Not known / Not stated"}
    other = _cell(audit.performance, "ethnic_group", "Other")
    assert other["status"] == INSUFFICIENT and other["n"] == 4 and np.isnan(other["auroc"])
    assert not any(f.group == "Other" for f in audit.flags)
    # Every IMD quintile x ethnic group cell is listed, even empty ones.
    cross = audit.performance[audit.performance["grouping"] == "imd_quintile_x_ethnic_group"]
    assert len(cross) == 30


def test_missing_ethnicity_is_its_own_group():
    predictions = synthetic_predictions(n=2_000, seed=4)
    predictions["ethnic_group"] = predictions["ethnic_group"].astype(object)
    predictions.loc[predictions.index[:300], "ethnic_group"] = None
    audit = run_audit(predictions, synthetic_selections(predictions), fast_settings(bootstrap_n=20))
    assert _cell(audit.performance, "ethnic_group", "Not known / Not stated")["n"] >= 300


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("y", 2, "predictions.y"),
        ("p", 1.5, "predictions.p"),
        ("ethnic_group", "Martian", "ethnic_group"),
        ("bed_days_next_year", -1, "predictions.bed_days_next_year"),
    ],
)
def test_bad_predictions_fail_naming_the_column(column, value, message):
    predictions = synthetic_predictions(n=500, seed=5)
    predictions[column] = predictions[column].astype(object)
    predictions.loc[predictions.index[0], column] = value
    with pytest.raises(RiskstratError, match=message):
        run_audit(predictions, synthetic_selections(synthetic_predictions(n=500, seed=5)), fast_settings())


def test_missing_need_column_is_named():
    predictions = synthetic_predictions(n=500, seed=5).drop(columns="efi_score")
    with pytest.raises(RiskstratError, match="efi_score"):
        run_audit(predictions, synthetic_selections(synthetic_predictions(n=500, seed=5)), FairnessSettings())


def test_every_estimate_lies_inside_its_interval(null_audit, scenario_audit):
    for audit in (null_audit, scenario_audit):
        checks = audit.checks
        assert ((checks["lower"] <= checks["estimate"]) & (checks["estimate"] <= checks["upper"])).all()
        for flag in audit.flags:
            if flag.shown is not None and "*" not in flag.shown:
                assert flag.shown[1] <= flag.shown[0] <= flag.shown[2], flag.flag_id
        ok = audit.performance[audit.performance["status"] == "ok"]
        for metric in ("auroc", "oe_ratio", "calibration_slope", "calibration_intercept"):
            assert ((ok[f"{metric}_lower"] <= ok[metric]) & (ok[metric] <= ok[f"{metric}_upper"])).all(), (
                metric
            )
        need = audit.need_ratios[audit.need_ratios["status"] == "ok"]
        assert (
            (need["need_ratio_lower"] <= need["need_ratio"])
            & (need["need_ratio"] <= need["need_ratio_upper"])
        ).all()


def test_unknown_reference_group_fails():
    predictions = synthetic_predictions(n=500, seed=5)
    settings = fast_settings(reference_groups={"ethnic_group": "Martian"})
    with pytest.raises(RiskstratError, match="reference group 'Martian'"):
        run_audit(predictions, synthetic_selections(predictions), settings)


def test_frame_index_does_not_matter(null_predictions):
    shuffled = null_predictions.sample(frac=1, random_state=1).set_index(
        pd.Index(range(10**6, 10**6 + 8_000))
    )
    small = shuffled.iloc[:1_500]
    audit = run_audit(small, synthetic_selections(small), fast_settings(bootstrap_n=20))
    assert _cell(audit.performance, "overall", "Everyone")["n"] == 1_500


def test_only_configured_groupings_gate_promotion(scenario_audit):
    everything = open_flags(scenario_audit, scenario_audit.settings)
    assert everything, "the scenario audit should have open flags"
    ethnicity_only = fast_settings(gating_groupings=["ethnic_group"])
    gated = open_flags(scenario_audit, ethnicity_only)
    assert gated and all(f.grouping == "ethnic_group" for f in gated)
    assert open_flags(scenario_audit, fast_settings(gating_groupings=[])) == []


def _sensitivity_flag(group: str, ratio: float) -> Flag:
    return Flag(
        flag_id=f"sensitivity_ratio:imd_quintile:{group}",
        kind="sensitivity_ratio",
        grouping="imd_quintile",
        group=group,
        measure="",
        estimate=ratio,
        lower=ratio * 0.8,
        upper=ratio * 0.9,
        tolerance="0.8 to 1.25",
        status="raised",
        sentence="The lists: ... - a real gap, not noise.",
    )


def test_a_group_at_higher_risk_found_less_often_is_not_explained_by_its_risk():
    performance = pd.DataFrame(
        {
            "grouping": "imd_quintile",
            "group": ["1", "3", "5"],
            "status": "ok",
            "mean_risk": [0.08, 0.03, 0.05],
        }
    )
    flags = [_sensitivity_flag("1", 0.5), _sensitivity_flag("3", 0.5)]
    judged = _explain_sensitivity(flags, [], performance, {"imd_quintile": "5"}, fast_settings())
    by_group = {f.group: f for f in judged}
    # IMD 1 is at higher predicted risk than the reference yet found half as often: not explained.
    assert by_group["1"].status == "raised"
    # IMD 3 is at lower risk and found less often: what ranking by risk does.
    assert by_group["3"].status == "explained"
    assert "emergency admissions next year" in by_group["3"].sentence


def test_a_gap_is_not_explained_while_the_group_has_a_raised_calibration_flag():
    # Predicted lower risk, but the model under-predicts the group: not explained by "different risk".
    performance = pd.DataFrame(
        {"grouping": "imd_quintile", "group": ["3", "5"], "status": "ok", "mean_risk": [0.03, 0.05]}
    )
    calibration = replace(
        _sensitivity_flag("3", 1.42),
        flag_id="calibration_oe:imd_quintile:3",
        kind="calibration_oe",
        status="raised",
    )
    (judged,) = _explain_sensitivity(
        [_sensitivity_flag("3", 0.5)], [calibration], performance, {"imd_quintile": "5"}, fast_settings()
    )
    assert judged.status == "raised"
