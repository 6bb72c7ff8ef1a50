"""The audit's flag rules: p-values, false discovery rate, margins before intersections,
combined findings, figures that agree with the decision, and power."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fairness_data import fast_settings

from riskstrat.evaluation.fairness import (
    ALL_MDTS,
    COVERED,
    FOLDED,
    NOT_RAISED,
    VERDICT,
    Flag,
    _Check,
    _combined,
    _findings,
    _fold_intersections,
    _judge,
    _judge_families,
    _mark_folded_combined,
    _oe_checks,
    _sensitivity_checks,
    consistent_shown,
    katz_ratio,
    one_sided_p,
    open_flags,
    sensitivity_power,
)
from riskstrat.evaluation.settings import AcceptedFlag

SETTINGS = fast_settings()


def _check(
    kind: str,
    group: str,
    estimate: float,
    lower: float,
    upper: float,
    *,
    grouping: str = "ethnic_group",
    measure: str = "",
    p_value: float = math.nan,
    low: float = math.nan,
    high: float = math.nan,
) -> _Check:
    """A check as the audit builds it, before judging (status "not raised", sentence with the verdict slot)."""
    if math.isnan(p_value):
        if kind in ("calibration_oe", "need_at_equal_risk"):
            bound = high
            p_value = one_sided_p(estimate, lower, upper, bound, True, True, 0.95)
        else:
            p_value = one_sided_p(estimate, lower, upper, low, False, kind == "gp_recording", 0.95)
    flag_id = f"{kind}:{grouping}:{group}" + (f":{measure}" if measure else "")
    flag = Flag(
        flag_id=flag_id,
        kind=kind,
        grouping=grouping,
        group=group,
        measure=measure,
        estimate=estimate,
        lower=lower,
        upper=upper,
        tolerance="",
        status=NOT_RAISED,
        sentence=f"{flag_id} - {VERDICT}.",
        p_value=p_value,
    )
    beyond = lower > high if not math.isnan(high) else upper < low
    return _Check(flag, low=low, high=high, interval_beyond=bool(beyond))


def _oe(group: str, estimate: float, lower: float, upper: float, **kw: object) -> _Check:
    return _check("calibration_oe", group, estimate, lower, upper, low=0.8, high=1.25, **kw)  # type: ignore[arg-type]


# --- p-values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate", "lower", "upper", "beyond"),
    [
        (1.40, 1.26, 1.55, True),
        (1.40, 1.24, 1.55, False),
        (1.10, 0.95, 1.30, False),
        (2.0, 1.2501, 3.0, True),
    ],
)
def test_a_p_value_is_below_the_interval_level_exactly_when_the_interval_lies_beyond(
    estimate, lower, upper, beyond
):
    p = one_sided_p(estimate, lower, upper, 1.25, True, True, 0.95)
    assert (p < 0.025) == beyond


def test_a_gap_inside_the_tolerance_has_a_large_p_value():
    assert one_sided_p(1.0, 0.9, 1.1, 1.25, True, True, 0.95) > 0.99
    assert one_sided_p(-0.01, -0.04, 0.02, -0.05, False, False, 0.95) > 0.99


# --- the false discovery rate ----------------------------------------------------------------


def test_a_check_that_alone_would_raise_does_not_when_many_checks_ran():
    # O/E 1.45 (1.26-1.67): alone, a raised flag.
    strong = _oe("Black", 1.45, 1.26, 1.67)
    (alone,) = _judge([strong], SETTINGS)
    assert alone.flag.status == "raised" and alone.flag.q_value == pytest.approx(alone.flag.p_value)
    assert "a real gap, not noise" in alone.flag.sentence and "1 checks" in alone.flag.sentence
    # Among 40 checks of the same kind, all inside the tolerance, the same evidence is not enough.
    many = [strong] + [_oe(f"g{i}", 1.0, 0.9, 1.1) for i in range(39)]
    judged = _judge(many, SETTINGS)
    assert judged[0].flag.status == NOT_RAISED
    assert judged[0].flag.q_value == pytest.approx(min(1.0, 40 * strong.flag.p_value))
    assert "not raised" in judged[0].flag.sentence and "40 checks" in judged[0].flag.sentence


def test_strong_evidence_is_raised_however_many_checks_ran():
    checks = [_oe("Black", 2.1, 1.9, 2.5)] + [_oe(f"g{i}", 1.0, 0.9, 1.1) for i in range(200)]
    assert _judge(checks, SETTINGS)[0].flag.status == "raised"


def test_real_gaps_in_non_gating_groupings_do_not_loosen_control_of_the_gating_flags():
    """Age band has real gaps by design; pooled with the gating checks, its many discoveries would
    lift the Benjamini-Hochberg threshold enough to raise a marginal gating check (rank 21 of 40:
    p 0.02 < 21/40 x 5%). Judged among the gating checks alone (rank 1 of 20: 0.05 / 20) it is not."""
    marginal = _oe("Black", 1.4, 1.26, 1.55, p_value=0.02)
    nulls = [_oe(f"G{i}", 1.0, 0.9, 1.1, grouping="imd_quintile") for i in range(19)]
    by_design = [_oe(f"{i}0-{i}9", 2.0, 1.6, 2.5, grouping="age_band", p_value=1e-10) for i in range(20)]
    assert "age_band" not in SETTINGS.gating_groupings
    judged = {c.flag.flag_id: c.flag for c in _judge_families([marginal, *nulls, *by_design], SETTINGS)}
    assert judged[marginal.flag.flag_id].status == NOT_RAISED
    assert (
        "20 checks of this kind in the groupings that decide promotion"
        in judged[marginal.flag.flag_id].sentence
    )
    assert all(judged[c.flag.flag_id].status == "raised" for c in by_design)
    assert (
        "in the groupings reported but not deciding promotion" in judged[by_design[0].flag.flag_id].sentence
    )
    with pytest.raises(ValueError, match="separate families"):
        _judge([marginal, by_design[0]], SETTINGS)


def test_a_flag_is_raised_only_when_its_interval_lies_beyond_the_tolerance():
    # p-value just under the level but the 95% interval reaches back inside: not raised, so a raised
    # flag's figures never contradict it.
    check = _oe("Black", 1.40, 1.24, 1.58)
    assert check.flag.p_value < SETTINGS.false_discovery_rate
    (judged,) = _judge([check], SETTINGS)
    assert judged.flag.status == NOT_RAISED


def test_a_calibrated_model_over_many_groups_raises_no_flag():
    # 150 groups whose true O/E is 1: each estimate is noise around 1 with its interval.
    rng = np.random.default_rng(3)
    checks = []
    for i in range(150):
        se = rng.uniform(0.05, 0.3)
        centre = rng.normal(0.0, se)
        checks.append(
            _oe(f"g{i}", math.exp(centre), math.exp(centre - 1.96 * se), math.exp(centre + 1.96 * se))
        )
    judged = _judge(checks, SETTINGS)
    assert [c.flag.flag_id for c in judged if c.flag.status == "raised"] == []
    assert sum(c.beyond for c in judged) > 0  # some estimates beyond the tolerance by chance, none raised


# --- margins before intersections ------------------------------------------------------------


def test_an_intersection_cell_raised_with_its_margin_is_part_of_the_margins_finding():
    margin = _oe("Mixed", 2.6, 2.0, 3.3)
    cell = _oe("1 x Mixed", 2.9, 1.9, 4.3, grouping="imd_quintile_x_ethnic_group")
    other_cell = _oe("1 x Asian", 2.9, 1.9, 4.3, grouping="imd_quintile_x_ethnic_group")
    judged = _judge([margin, cell, other_cell], SETTINGS)
    folded_checks, folded = _fold_intersections(judged)
    status = {c.flag.group: c.flag.status for c in folded_checks}
    # IMD 1 x Mixed folds into Mixed; IMD 1 x Asian has no raised margin and stands on its own.
    assert status == {"Mixed": "raised", "1 x Mixed": FOLDED, "1 x Asian": "raised"}
    assert [f.group for f in folded["calibration_oe:ethnic_group:Mixed"]] == ["1 x Mixed"]
    findings = _findings(folded_checks, folded, [], pd.DataFrame(), SETTINGS)
    assert [f.flag_id for f in findings] == [
        "calibration_oe:ethnic_group:Mixed",
        "calibration_oe:imd_quintile_x_ethnic_group:1 x Asian",
    ]
    mixed = findings[0]
    assert [f.group for f in mixed.detail] == ["1 x Mixed"]
    assert "part of this finding, not a separate one" in mixed.sentence


def test_an_intersection_is_not_folded_into_a_margin_raised_for_another_kind():
    margin = _check("need_at_equal_risk", "Mixed", 1.6, 1.3, 1.9, measure="ltc_count", high=1.2)
    cell = _oe("1 x Mixed", 2.9, 1.9, 4.3, grouping="imd_quintile_x_ethnic_group")
    judged = _judge([margin], SETTINGS) + _judge([cell], SETTINGS)
    folded_checks, folded = _fold_intersections(judged)
    assert [c.flag.status for c in folded_checks] == ["raised", "raised"] and folded == {}


def test_the_scenario_intersection_is_detail_of_the_groups_finding(scenario_audit):
    ids = {f.flag_id for f in scenario_audit.findings}
    assert "calibration_oe:ethnic_group:Black" in ids
    assert not any(
        f.grouping == "imd_quintile_x_ethnic_group" and "Black" in f.group for f in scenario_audit.flags
    )
    finding = next(f for f in scenario_audit.findings if f.flag_id == "calibration_oe:ethnic_group:Black")
    assert any(d.group == "1 x Black" for d in finding.detail)
    folded = scenario_audit.checks[scenario_audit.checks["status"] == FOLDED]
    assert "calibration_oe:imd_quintile_x_ethnic_group:1 x Black" in set(folded["flag_id"])


# --- combined findings -----------------------------------------------------------------------


def _weak_signals(group: str = "Black", auroc: float = -0.045) -> list[_Check]:
    """Three measures from independent sources, each beyond half its tolerance but none raised alone."""
    return [
        _oe(group, 1.22, 1.16, 1.28),
        _check("need_at_equal_risk", group, 1.17, 1.12, 1.22, measure="ltc_count", high=1.2),
        _check("auroc_gap", group, auroc, auroc - 0.015, auroc + 0.015, low=-0.05),
    ]


def _judged(checks: list[_Check]) -> list[_Check]:
    return [
        c
        for kind in ("calibration_oe", "need_at_equal_risk", "auroc_gap")
        for c in _judge([c for c in checks if c.flag.kind == kind], SETTINGS)
    ]


def test_three_coherent_weak_signals_make_one_combined_finding():
    checks = _judged(_weak_signals())
    assert all(c.flag.status == NOT_RAISED for c in checks)
    table, found = _combined(checks, SETTINGS)
    row = table.iloc[0]
    assert (row["sources"], row["sources_pointing"], row["status"]) == (3, 3, "raised")
    findings = _findings(checks, {}, found, table, SETTINGS)
    (finding,) = findings
    assert finding.flag_id == "combined:ethnic_group:Black" and finding.kind == "combined"
    assert {f.kind for f in finding.parts} == {"calibration_oe", "need_at_equal_risk", "auroc_gap"}
    assert "Several measures point the same way for Black" in finding.sentence
    assert "observed/expected 1.22" in finding.sentence and "long-term conditions" in finding.sentence
    # It blocks like a flag, and is accepted the same way.
    audit = type("Audit", (), {"findings": findings})()
    assert [f.flag_id for f in open_flags(audit, SETTINGS)] == ["combined:ethnic_group:Black"]
    accepted = fast_settings(
        accepted_flags=[
            AcceptedFlag(
                flag_id="combined:ethnic_group:Black",
                reason="Recording project under way; reviewed monthly.",
                accepted_by="Governance board",
                date="2025-01-15",
            )
        ]
    )
    assert open_flags(audit, accepted) == []


def test_one_source_pointing_the_way_is_not_a_combined_finding():
    # Under-predicted, but neither sicker at equal risk nor ranked worse: one signal, no combination.
    checks = _judged(
        [
            _oe("Black", 1.24, 1.12, 1.37),
            _check("need_at_equal_risk", "Black", 0.85, 0.75, 0.95, measure="ltc_count", high=1.2),
            _check("auroc_gap", "Black", 0.04, 0.01, 0.07, low=-0.05),
        ]
    )
    table, found = _combined(checks, SETTINGS)
    assert found == [] and table.iloc[0]["sources_pointing"] == 1 and table.iloc[0]["p_value"] == 1.0


def test_a_source_pointing_the_other_way_does_not_cancel_two_that_agree():
    # Under-recording lowers GP-recorded need at equal risk while events and ranking show the harm.
    agree = [_oe("Black", 1.22, 1.16, 1.28), _check("auroc_gap", "Black", -0.045, -0.06, -0.03, low=-0.05)]
    contrary = _check("need_at_equal_risk", "Black", 0.7, 0.6, 0.8, measure="ltc_count", high=1.2)
    with_contrary, _ = _combined(_judged([*agree, contrary]), SETTINGS)
    without, _ = _combined(_judged(agree), SETTINGS)
    assert with_contrary.iloc[0]["status"] == "raised"
    # It adds no evidence, and costs a little (one more source the second-strongest could have been).
    assert with_contrary.iloc[0]["p_value"] > without.iloc[0]["p_value"]


def test_one_strong_source_does_not_make_a_combined_finding_alone():
    # Much more GP-recorded illness at equal risk (within its tolerance), and bed days a shade above
    # everyone else's with no evidence: one source, not two.
    checks = _judged(
        [
            _check("need_at_equal_risk", "White", 1.18, 1.15, 1.22, measure="ltc_count", high=1.2),
            _check("need_at_equal_risk", "White", 1.02, 0.88, 1.14, measure="bed_days_next_year", high=1.2),
            _check("auroc_gap", "White", 0.04, 0.01, 0.07, low=-0.05),
        ]
    )
    table, found = _combined(checks, SETTINGS)
    assert table.iloc[0]["sources_pointing"] == 2 and table.iloc[0]["p_value"] > 0.5 and found == []


def test_measures_from_the_same_source_are_not_counted_twice():
    # O/E and next-year admissions come from the same hospital events: one source, the stronger counts.
    checks = _judged(
        [
            _oe("Black", 1.24, 1.12, 1.37),
            _check(
                "need_at_equal_risk",
                "Black",
                1.19,
                1.08,
                1.31,
                measure="emergency_admissions_next_year",
                high=1.2,
            ),
        ]
    )
    table, found = _combined(checks, SETTINGS)
    assert table.empty and found == []


def test_a_combined_test_whose_part_is_raised_alone_is_covered_by_that_flag():
    checks = _judged([_oe("Black", 2.1, 1.9, 2.5), *_weak_signals()[1:]])
    table, found = _combined(checks, SETTINGS)
    assert table.iloc[0]["status"] == COVERED and found == []


@pytest.mark.parametrize(("others", "raised"), [(10, True), (100, False)])
def test_combined_findings_are_controlled_across_groups(others, raised):
    # One group's weak coherent signals among groups where nothing is going on: the same evidence
    # stands among 10 other groups but not among 100.
    checks = list(_weak_signals())
    for i in range(others):
        checks += [
            _oe(f"g{i}", 1.0, 0.9, 1.1),
            _check("need_at_equal_risk", f"g{i}", 1.0, 0.9, 1.1, measure="ltc_count", high=1.2),
            _check("auroc_gap", f"g{i}", 0.0, -0.03, 0.03, low=-0.05),
        ]
    table, found = _combined(_judged(checks), SETTINGS)
    assert len(table) == others + 1
    assert [(g, group) for g, group, *_ in found] == ([("ethnic_group", "Black")] if raised else [])
    assert (table.loc[table["group"] != "Black", "status"] == NOT_RAISED).all()


def test_combined_findings_are_controlled_within_the_gating_family():
    # The same evidence that does not stand among 100 null gating groups stands when those groups
    # are age bands: the non-gating groupings are a family of their own, as for single checks.
    checks = list(_weak_signals())
    for i in range(100):
        checks += [
            _oe(f"a{i}", 1.0, 0.9, 1.1, grouping="age_band"),
            _check(
                "need_at_equal_risk",
                f"a{i}",
                1.0,
                0.9,
                1.1,
                grouping="age_band",
                measure="ltc_count",
                high=1.2,
            ),
            _check("auroc_gap", f"a{i}", 0.0, -0.03, 0.03, grouping="age_band", low=-0.05),
        ]
    table, found = _combined(_judge_families(checks, SETTINGS), SETTINGS)
    assert [(g, group) for g, group, *_ in found] == [("ethnic_group", "Black")]
    assert set(table.loc[table["grouping"] == "age_band", "family"]) == {"reported"}


# --- figures that agree --------------------------------------------------------------------


def test_an_estimate_with_nobody_found_lies_inside_its_interval():
    ratio, low, high = katz_ratio(0, 40, 25, 60, 0.95)
    assert 0 < low <= ratio <= high
    ratio, low, high = katz_ratio(12, 40, 0, 60, 0.95)
    assert low <= ratio <= high


@pytest.mark.parametrize(
    ("exact", "shown", "agrees"),
    [
        ((1.30, 1.26, 1.34), (1.08, 1.05, 1.12), False),  # rounding pulls it inside the tolerance
        ((1.30, 1.26, 1.34), (1.35, 1.31, 1.40), True),
        ((1.05, 0.98, 1.12), (0.97, 0.91, 1.04), False),  # under-prediction would read as over-prediction
        ((1.05, 0.98, 1.12), (1.02, 0.96, 1.09), True),
    ],
)
def test_rounded_figures_are_shown_only_when_they_tell_the_same_story(exact, shown, agrees):
    assert consistent_shown(exact, shown, 0.8, 1.25, 1.0) == agrees


def test_an_observed_expected_that_rounding_would_contradict_is_not_shown():
    # 12 events are shown as 10: O/E 1.30 would read 1.08, inside the tolerance.
    performance = pd.DataFrame(
        [
            {
                "grouping": "ethnic_group",
                "group": "Mixed",
                "label": "Mixed",
                "status": "ok",
                "events": 12.0,
                "oe_ratio": 1.30,
                "oe_ratio_lower": 1.26,
                "oe_ratio_upper": 1.34,
            }
        ]
    )
    (check,) = _oe_checks(performance, SETTINGS)
    assert check.flag.shown == ("*", "*", "*")
    assert "not shown" in check.flag.sentence and "1.08" not in check.flag.sentence
    assert check.flag.estimate == 1.30  # decided on the exact figure


# --- power ---------------------------------------------------------------------------------


def test_power_grows_with_events_and_is_independent_of_the_gap_seen():
    few = sensitivity_power(60, 400, 0.3, SETTINGS)
    many = sensitivity_power(2_000, 4_000, 0.3, SETTINGS)
    assert few < 0.5 < 0.8 < many


def _list_cell(group: str, events: float, found: float) -> dict[str, object]:
    return {
        "mdt": ALL_MDTS,
        "grouping": "imd_quintile",
        "group": group,
        "label": group,
        "status": "ok",
        "events": events,
        "true_positives": found,
    }


def test_a_sensitivity_check_without_power_is_withheld_with_the_reason():
    lists = pd.DataFrame([_list_cell("5", 3_000, 900), _list_cell("1", 2_500, 700), _list_cell("2", 60, 0)])
    checks, withheld = _sensitivity_checks(lists, {"imd_quintile": "5"}, SETTINGS)
    assert [c.flag.group for c in checks] == ["1"]
    (row,) = withheld
    assert row["group"] == "2" and row["power"] < SETTINGS.min_power
    assert row["reason"].startswith("too few events to detect a gap of 20%: power ")


def test_the_null_audit_says_which_list_checks_it_withheld(null_audit):
    withheld = null_audit.withheld
    assert not withheld.empty and (withheld["power"] < null_audit.settings.min_power).all()
    assert null_audit.error_control["kinds"]["sensitivity_ratio"]["withheld"] == len(withheld)


# --- error control, as the board is told it ------------------------------------------------


def test_error_control_counts_every_check_and_states_the_chance_of_a_false_flag(scenario_audit):
    control = scenario_audit.error_control
    assert control["level"] == scenario_audit.settings.false_discovery_rate
    assert "Benjamini-Hochberg" in control["method"]
    checks = scenario_audit.checks
    for kind, counts in control["kinds"].items():
        if kind == "combined":
            assert counts["checks"] == len(scenario_audit.combined)
            continue
        mine = checks[checks["kind"] == kind]
        assert counts["checks"] == len(mine)
        assert counts["raised"] == int((mine["status"] == "raised").sum())
        gating = mine["grouping"].isin(scenario_audit.settings.gating_groupings)
        assert counts["families"] == int(gating.any()) + int((~gating).any())
    assert control["checks"] == sum(k["checks"] for k in control["kinds"].values())
    # Each family that ran has its own bound on the chance of any false flag: a probability, not a count.
    families = control["families"]
    assert {f["family"] for f in families} == {"gating", "reported"}
    assert all(f["false_flag_chance_bound"] == control["level"] for f in families)
    for kind, counts in control["kinds"].items():
        assert sum(f["checks"] for f in families if f["kind"] == kind) == counts["checks"]
    assert "not a count" in control["false_flag_chance_method"]


def test_a_place_with_fewer_recorded_events_than_predicted_may_have_lost_data():
    performance = pd.DataFrame(
        [
            {
                "grouping": "local_authority",
                "group": "E08000027",
                "label": "Dudley",
                "status": "ok",
                "events": 300.0,
                "oe_ratio": 0.60,
                "oe_ratio_lower": 0.53,
                "oe_ratio_upper": 0.67,
            }
        ]
    )
    (check,) = _judge(_oe_checks(performance, SETTINGS), SETTINGS)
    assert check.flag.status == "raised"
    assert "fewer people in Dudley had a recorded outcome" in check.flag.sentence
    assert "may have lost data rather than gained health" in check.flag.sentence
    assert "over-estimates risk for Dudley:" not in check.flag.sentence


def test_an_intersections_combined_finding_is_detail_of_its_margins():
    margin = _weak_signals("Mixed")
    cell = [
        replace(c, flag=replace(c.flag, grouping="imd_quintile_x_ethnic_group", group="1 x Mixed"))
        for c in _weak_signals("Mixed")
    ]
    checks = _judged(margin + cell)
    table, found = _combined(checks, SETTINGS)
    assert set(table["status"]) == {"raised"}
    (finding,) = _findings(checks, {}, found, table, SETTINGS)
    assert finding.flag_id == "combined:ethnic_group:Mixed"
    assert [d.flag_id for d in finding.detail] == ["combined:imd_quintile_x_ethnic_group:1 x Mixed"]
    marked = _mark_folded_combined(table, [finding]).set_index("group")["status"]
    assert marked.to_dict() == {"Mixed": "raised", "1 x Mixed": FOLDED}
