"""The fairness audit on real pipeline output: the synthetic default and the under-recording scenario.

For each scenario (module fixture) a synthetic population is generated, the
training table is built through the retrain flow's task logic, the
emergency-admission model is trained and calibrated, and its test rows are
audited exactly as the retrain flow audits them. The scenario under-records
the GP care of Asian people (true 2021-census group; about a fifth of the
Black Country, so the test has power): most of their GP diagnoses and GP
appointments never reach the extract. Ethnicity is not a model input, so the
model cannot recalibrate for the group (as it did when the scenario targeted
IMD quintile 1, an input); it should see the group as healthier than it is,
and the audit must say so: its calibration (more admissions than predicted)
and its need at equal risk (more admissions at the same predicted risk).
Those two tests are strict expected failures for now (see
``SCENARIO_TOO_WEAK``). On the default, no calibration flag is raised for
deprivation or ethnicity, and every flag raised is explained in the report.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from riskstrat.config import Config, load_config, write_relocated_config
from riskstrat.evaluation.fairness import FairnessAudit, Flag, run_audit
from riskstrat.evaluation.report import ModelInfo, render_report

pytestmark = pytest.mark.slow

PEOPLE = 30_000
SEED = 5
OUTCOME = "emergency_admission"
GROUPING = "ethnic_group"
GROUP = "Asian"
UNDER_RECORDING = {
    "enabled": True,
    "group_column": GROUPING,
    "group_value": GROUP,
    "share_not_recorded": 0.9,
    "gp_activity_not_recorded": 0.9,
}
SCENARIOS = {"default": None, "under_recording": UNDER_RECORDING}

# Known gap (reported to the lead; not a weakened assertion): even with 90-100% of the group's GP
# diagnoses and 70-100% of its GP appointments unrecorded, the gap sits at the tolerance, not
# beyond it (likely because the model still sees the group's age and hospital use). Asian O/E 1.27 (95% CI
# 1.05-1.53) at 30,000 people (90%/90%), 1.12 (0.93-1.34) with everything unrecorded (probably: a group
# with no GP record at all is easy to recognise, so the model partly recalibrates), 1.25-1.26 (1.05-1.49)
# at 50,000 (100%/70%, 90%/85%); standardised need ratio for next-year emergency admissions 1.08
# (0.83-1.41) at 30,000 and 1.22-1.23 (0.98-1.50) at 50,000 (tolerance 1.2). GP-recorded need
# (long-term conditions, frailty) is under-recorded with the diagnoses, so it cannot flag the group.
# Both flags come out "possible, uncertain", never "raised". Strict, so the tests fail loudly once
# the scenario (or the model) makes the gap detectable and these markers must be removed.
SCENARIO_TOO_WEAK = pytest.mark.xfail(
    strict=True,
    reason="even with most of the group's GP diagnoses and appointments unrecorded, its O/E and need "
    "ratio sit at the tolerance, flagged 'possible, uncertain' but not raised (see module notes)",
)


@dataclass
class ScenarioRun:
    """One scenario's audit and its rendered report."""

    audit: FairnessAudit
    html: str
    test_rows: int


def write_config(folder: Path, out: Path, under_recording: dict | None) -> Path:
    """The shipped settings with outputs under ``out``, small bootstraps and an optional scenario."""
    changes: dict[str, dict] = {
        "model.yaml": {"outcomes": [OUTCOME], "evaluation": {"n_boot": 30}},
        "fairness.yaml": {"bootstrap_n": 100},
    }
    if under_recording:
        changes["synthetic.yaml"] = {"under_recording": dict(under_recording)}
    return write_relocated_config(folder, out, changes)


def model_info(config: Config, table: pd.DataFrame) -> ModelInfo:
    """What the report says about the model (the test does not register it in MLflow)."""
    return ModelInfo(
        outcome=OUTCOME,
        model_name=OUTCOME,
        model_version="test",
        training_data=f"Synthetic population, {table['person_id'].nunique():,} people.",
        outcome_definition="An emergency admission (or death) in the 365 days after the as-of date.",
        test_as_of=str(config.model.as_of.test),
        synthetic=True,
    )


def run_scenario(root: Path, under_recording: dict | None) -> ScenarioRun:
    """Generate, build the training table, train, audit and render, as the retrain flow does."""
    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.models.training import train_outcome
    from riskstrat.pipelines import flows
    from riskstrat.pipelines.generate import write_synthetic
    from riskstrat.pipelines.retrain import feature_names_from

    out = root / "outputs"
    config = load_config(write_config(root / "configs", out, under_recording))
    paths = write_synthetic(out, PEOPLE, SEED, config.synthetic)
    table = flows.training_table.fn(config, paths.extract_dir)
    names = feature_names_from(flows._dictionary_frame(feature_dictionary(config.features)))
    result = train_outcome(table, names, OUTCOME, config.model)
    test = table.iloc[result.test_rows]
    predictions, selections = flows.audit_inputs(
        config, test, result.test_scores["lightgbm"].to_numpy(), OUTCOME
    )
    audit = run_audit(predictions, selections, config.fairness)
    page, _ = render_report(audit, model_info(config, table))
    return ScenarioRun(audit, page, len(test))


@pytest.fixture(scope="module")
def scenario_runs(tmp_path_factory) -> dict[str, ScenarioRun]:
    return {
        name: run_scenario(tmp_path_factory.mktemp(name), settings) for name, settings in SCENARIOS.items()
    }


def _flags(run: ScenarioRun, kind: str, grouping: str, group: str | None = None) -> list[Flag]:
    return [
        f
        for f in run.audit.flags
        if f.kind == kind and f.grouping == grouping and (group is None or f.group == group)
    ]


@SCENARIO_TOO_WEAK
def test_under_recorded_group_is_flagged_for_calibration(scenario_runs):
    run = scenario_runs["under_recording"]
    flags = _flags(run, "calibration_oe", GROUPING, GROUP)
    assert [f.status for f in flags] == ["raised"], [f.sentence for f in run.audit.flags]
    flag = flags[0]
    # Under-recorded diagnoses make the group look healthier: more admissions than predicted.
    assert flag.lower > run.audit.settings.tolerances.oe_high
    assert "under-estimates risk" in flag.sentence


@SCENARIO_TOO_WEAK
def test_under_recorded_group_is_flagged_for_need_at_equal_risk(scenario_runs):
    run = scenario_runs["under_recording"]
    flags = [f for f in _flags(run, "need_at_equal_risk", GROUPING, GROUP) if f.status == "raised"]
    assert flags, [f.sentence for f in run.audit.flags]
    limit = run.audit.settings.tolerances.need_ratio
    assert all(f.lower > limit for f in flags)


def test_default_raises_no_calibration_flag_for_deprivation_or_ethnicity(scenario_runs):
    run = scenario_runs["default"]
    raised = [
        f.sentence
        for grouping in ("imd_quintile", "ethnic_group")
        for f in _flags(run, "calibration_oe", grouping)
        if f.status == "raised"
    ]
    assert raised == []


def test_default_flags_are_explained_in_the_report(scenario_runs):
    run = scenario_runs["default"]
    for flag in run.audit.flags:
        if flag.status in ("raised", "explained"):
            assert flag.sentence, flag.flag_id
            # The page is HTML-escaped (e.g. "group's" -> "group&#39;s"); compare the text a reader sees.
            assert flag.sentence in html.unescape(run.html), flag.flag_id
