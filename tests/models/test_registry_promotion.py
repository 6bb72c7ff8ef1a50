"""MLflow round trip and gated promotion, on SQLite tracking in a temporary folder."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from synthetic_training import FEATURES, fast_settings

from riskstrat.evaluation.training_figures import close_figures, training_figures
from riskstrat.models.promotion import (
    calibration_checks,
    decide,
    promote,
    refusal_chance,
    standard_error_at,
)
from riskstrat.models.registry import CHALLENGER, CHAMPION, alias_version, load_model, log_training_run
from riskstrat.models.scoring import load_champion, score
from riskstrat.models.settings import PromotionSettings

OUTCOME = "emergency_admission"


@pytest.fixture(scope="module")
def mlflow_home(tmp_path_factory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder}/mlflow.db", folder / "mlartifacts"


@pytest.fixture(scope="module")
def first_run(trained, training_table, settings, mlflow_home):
    uri, artifacts = mlflow_home
    result = trained[OUTCOME]
    test = training_table.iloc[result.test_rows]
    figures = training_figures(result, test)
    registration = log_training_run(
        result,
        settings,
        uri,
        artifacts,
        feature_dictionary=pd.DataFrame({"name": FEATURES, "description": "made-up"}),
        extract_snapshot_hash="abc123",
        settings_hash="def456",
        validation_warnings=["patients.ethnic_category: 3% not known"],
        figures=figures,
    )
    close_figures(figures)
    return registration, test


@pytest.mark.slow
def test_model_from_registry_scores_like_the_model_in_memory(first_run, trained):
    registration, test = first_run
    loaded = load_model(f"models:/{registration.model_name}@{CHALLENGER}", registration.tracking_uri)
    np.testing.assert_allclose(
        score(loaded, test), trained[OUTCOME].model.predict_proba(test), rtol=0, atol=1e-9
    )
    assert loaded.feature_names == FEATURES
    np.testing.assert_allclose(
        loaded.booster.predict(test[FEATURES].to_numpy(float), pred_contrib=True),
        trained[OUTCOME].model.booster.predict(test[FEATURES].to_numpy(float), pred_contrib=True),
        atol=1e-9,
    )


@pytest.mark.slow
def test_run_records_metrics_with_intervals_hashes_and_caseload(first_run):
    registration, _ = first_run
    run = MlflowClient(registration.tracking_uri).get_run(registration.run_id)
    m = run.data.metrics
    assert m["test_auroc_ci_low"] <= m["test_auroc"] <= m["test_auroc_ci_high"]
    assert "test_logistic_regression_auroc" in m and "test_prior_utilisation_auroc" in m
    assert "test_oracle_auroc" in m and "test_ppv_at_capacity" in m
    tags = run.data.tags
    assert tags["extract_snapshot_hash"] == "abc123" and tags["settings_hash"] == "def456"
    assert tags["caseload_treatment"] == "flag" and tags["git_commit"]
    assert run.data.params["caseload_treatment"] == "flag"


@pytest.mark.slow
def test_no_patient_level_rows_in_artifacts(first_run, training_table):
    registration, _ = first_run
    client = MlflowClient(registration.tracking_uri)
    root = Path(client.download_artifacts(registration.run_id, "", dst_path=None))
    texts = [
        p.read_text(errors="ignore") for p in root.rglob("*") if p.is_file() and p.suffix in {".csv", ".json"}
    ]
    ids = training_table["person_id"].unique()[:5000]
    assert not any(pid in text for text in texts for pid in ids[:200])
    example = next(
        Path(p)
        for p in Path(registration.tracking_uri.removeprefix("sqlite:///")).parent.rglob("input_example.json")
    )
    rows = json.loads(example.read_text())["data"]
    assert len(rows) == 1  # one row of training medians, not a person


@pytest.mark.slow
def test_first_model_promoted_when_it_beats_both_baselines_then_alias_moves_only_on_pass(
    first_run, trained, training_table, settings
):
    registration, test = first_run
    uri = registration.tracking_uri
    assert alias_version(registration.model_name, CHAMPION, uri) is None
    decision = promote(registration, test, test[OUTCOME].to_numpy(), trained[OUTCOME].metrics, settings)
    assert decision.promoted, decision.summary()
    assert alias_version(registration.model_name, CHAMPION, uri) == registration.version
    champion = load_champion(registration.model_name, uri)
    np.testing.assert_allclose(score(champion, test), trained[OUTCOME].model.predict_proba(test), atol=1e-9)
    run = MlflowClient(uri).get_run(registration.run_id)
    assert run.data.tags["promotion_decision"] == "promoted"

    # A worse challenger (trained with a single weak tree on two features) is refused.
    weak_settings = fast_settings(
        lightgbm={OUTCOME: {"n_estimators": 1, "num_leaves": 2, "early_stopping_rounds": 1}}
    )
    from riskstrat.models.training import train_outcome

    weak = train_outcome(training_table, ["sex_female", "imd_decile"], OUTCOME, weak_settings)
    weak_registration = log_training_run(weak, weak_settings, uri, Path("unused"))
    refused = promote(weak_registration, test, test[OUTCOME].to_numpy(), weak.metrics, weak_settings)
    assert not refused.promoted and not refused.eligible
    assert any("worse than the champion" in reason for reason in refused.reasons)
    assert alias_version(registration.model_name, CHAMPION, uri) == registration.version
    assert alias_version(registration.model_name, CHALLENGER, uri) == weak_registration.version
    assert MlflowClient(uri).get_run(weak_registration.run_id).data.tags["promotion_decision"] == "refused"


def _metrics(auroc=0.80, prior=0.70, logistic=0.75, slope=1.0, oe=1.0):
    rows = [
        ("lightgbm", "auroc", auroc),
        ("lightgbm", "calibration_slope", slope),
        ("lightgbm", "oe_ratio", oe),
        ("prior_utilisation", "auroc", prior),
        ("logistic_regression", "auroc", logistic),
    ]
    return pd.DataFrame(rows, columns=["model", "metric", "value"])


def test_first_model_refused_when_it_does_not_beat_the_logistic_baseline():
    ok, reasons, _ = decide(_metrics(auroc=0.74), fast_settings().promotion)
    assert not ok
    assert any("does not beat the logistic regression" in r for r in reasons)


def test_challenger_within_tolerance_passes_and_beyond_it_fails():
    rules = fast_settings(promotion={"auroc_tolerance": 0.005}).promotion
    assert decide(_metrics(auroc=0.796), rules, champion_auroc=0.80)[0]
    ok, reasons, _ = decide(_metrics(auroc=0.79), rules, champion_auroc=0.80)
    assert not ok and any("more than the tolerance" in r for r in reasons)


@pytest.mark.parametrize(
    ("slope", "oe", "words"), [(0.8, 1.0, "calibration slope"), (1.0, 1.2, "observed/expected")]
)
def test_calibration_out_of_bounds_is_refused_with_reason(slope, oe, words):
    rules = fast_settings(promotion={}).promotion
    ok, reasons, _ = decide(_metrics(slope=slope, oe=oe), rules, champion_auroc=0.79)
    assert not ok
    assert any(r.startswith("failed") and words in r for r in reasons)


def test_open_fairness_flag_blocks_promotion():
    flag = "calibration_oe:imd_quintile:1"
    ok, reasons, _ = decide(_metrics(), fast_settings().promotion, open_fairness_flags=[flag])
    assert not ok and any(flag in r and "configs/fairness.yaml" in r for r in reasons)
    assert decide(_metrics(), fast_settings().promotion, open_fairness_flags=[])[0]


def test_reasons_give_the_paired_auroc_difference_when_the_metrics_hold_it():
    """The board reads "beats the logistic regression" with its paired interval, not a bare point estimate."""
    metrics = pd.concat(
        [
            _metrics(auroc=0.80, logistic=0.78),
            pd.DataFrame(
                [("logistic_regression", "auroc_difference", 0.02, -0.004, 0.041)],
                columns=["model", "metric", "value", "ci_low", "ci_high"],
            ),
        ],
        ignore_index=True,
    )
    ok, reasons, _ = decide(metrics, fast_settings().promotion)
    assert ok
    assert (
        "passed: AUROC 0.8000 beats the logistic regression "
        "(0.7800; difference +0.0200, paired 95% CI -0.0040 to +0.0410)."
    ) in reasons
    assert "passed: AUROC 0.8000 beats the prior-utilisation rule (0.7000)." in reasons  # no row: no interval


def _calibration(oe=(1.0, 0.95, 1.05), slope=(1.0, 0.95, 1.05), events=204):
    """Test metrics with intervals, as evaluate_scores gives them: (value, ci_low, ci_high) per metric."""
    rows = [
        ("lightgbm", "oe_ratio", *oe, events),
        ("lightgbm", "calibration_slope", *slope, events),
        ("lightgbm", "auroc", 0.80, 0.78, 0.82, events),
    ]
    return pd.DataFrame(rows, columns=["model", "metric", "value", "ci_low", "ci_high", "events"])


def test_calibration_gate_refuses_when_the_whole_interval_lies_outside_the_bounds():
    ok, reasons, checks = calibration_checks(_calibration(oe=(1.30, 1.18, 1.43)), PromotionSettings())
    assert not ok
    oe_reason = next(r for r in reasons if "observed/expected" in r)
    assert oe_reason.startswith("failed: observed/expected ratio 1.300 (95% CI 1.180 to 1.430, 204 events)")
    assert "lies above 0.9 to 1.1 with its whole interval" in oe_reason
    # The rule's error rates at this precision, in the same sentence.
    assert "refuses a perfectly calibrated model under 0.1% of the time" in oe_reason
    assert "the chance it passes one at 0.8 is about" in oe_reason and "one at 1.25 about" in oe_reason
    assert checks["challenger_oe_ratio_gate_passed"] == 0.0


def test_calibration_gate_passes_when_the_interval_straddles_a_bound():
    """The demo's frequent-attendance model: O/E 1.124 above 1.1, but its interval reaches inside."""
    ok, reasons, checks = calibration_checks(_calibration(oe=(1.124, 1.011, 1.252)), PromotionSettings())
    assert ok, reasons
    assert reasons[0].startswith(
        "passed: observed/expected ratio 1.124 (95% CI 1.011 to 1.252, 204 events) is not shown to lie "
        "outside 0.9 to 1.1"
    )
    # With 204 events a model truly at 1.25 passes often: the sentence says how often.
    assert 0.2 < checks["challenger_oe_ratio_passes_material"] < 0.6


def test_pass_on_evidence_refuses_a_straddling_interval_and_passes_one_inside():
    rules = PromotionSettings(calibration_evidence="pass_on_evidence")
    ok, reasons, _ = calibration_checks(_calibration(oe=(1.124, 1.011, 1.252)), rules)
    assert not ok and "is not shown to lie within 0.9 to 1.1" in reasons[0]
    assert calibration_checks(_calibration(oe=(1.01, 0.95, 1.07)), rules)[0]


def test_slope_gate_judges_its_interval_too():
    ok, reasons, _ = calibration_checks(_calibration(slope=(0.85, 0.80, 0.89)), PromotionSettings())
    assert not ok and reasons[1].startswith("failed: calibration slope 0.850 (95% CI 0.800 to 0.890")
    assert calibration_checks(_calibration(slope=(0.88, 0.80, 0.97)), PromotionSettings())[0]


def test_report_quotes_the_oe_on_the_shown_events_but_decides_on_the_exact_ones():
    """One O/E for the test rows in the report: the gate quotes it on the rounded events, as the tables do."""
    _, reasons, checks = calibration_checks(
        _calibration(oe=(1.124, 1.011, 1.252)), PromotionSettings(), shown_events=205
    )
    assert "observed/expected ratio 1.130 (95% CI 1.016 to 1.258, 205 events)" in reasons[0]
    assert checks["challenger_oe_ratio"] == 1.124


def test_refusal_chance_is_the_rules_stated_error_rate_at_the_bounds():
    se = 0.05
    # Refuse on evidence: a model exactly at a bound is refused 2.5% of the time, one at 1.0 less.
    assert refusal_chance(1.1, se, (0.9, 1.1), "refuse_on_evidence", True) == pytest.approx(0.025, abs=1e-3)
    assert refusal_chance(1.0, se, (0.9, 1.1), "refuse_on_evidence", True) < 0.025
    # Pass on evidence: a model exactly at a bound passes at most 2.5% of the time.
    assert 1 - refusal_chance(1.1, se, (0.9, 1.1), "pass_on_evidence", True) <= 0.025 + 1e-3


def test_the_pass_chance_at_a_true_oe_uses_the_precision_that_true_value_would_give():
    """A model truly at O/E 0.8 gives fewer events than one seen at 1.124, so a wider interval.

    The demo's frequent-attendance simulation measured 58% (42% to 71%) of such models passing;
    the chance at the observed O/E's standard error said at most 43%.
    """
    _, reasons, checks = calibration_checks(_calibration(oe=(1.124, 1.011, 1.252)), PromotionSettings())
    se_observed = (math.log(1.252) - math.log(1.011)) / (2 * 1.959964)
    unscaled = 1 - refusal_chance(0.8, se_observed, (0.9, 1.1), "refuse_on_evidence", True)
    scaled = 1 - refusal_chance(
        0.8, se_observed * math.sqrt(1.124 / 0.8), (0.9, 1.1), "refuse_on_evidence", True
    )
    assert unscaled < 0.45 < scaled
    assert checks["challenger_oe_ratio_passes_material"] == pytest.approx(scaled)
    # Figures from a normal approximation, each at its own value: "about", never "at most".
    assert f"the chance it passes one at 0.8 is about {100 * scaled:.0f}%, one at 1.25 about" in reasons[0]
    assert "at most" not in reasons[0]


def test_a_slope_standard_error_is_not_rescaled():
    assert standard_error_at(0.05, 1.2, 0.8, log_scale=False) == 0.05
    assert standard_error_at(0.05, 1.2, 0.8, log_scale=True) == pytest.approx(0.05 * math.sqrt(1.5))


def test_without_intervals_the_point_estimate_is_judged_and_said_so():
    ok, reasons, _ = calibration_checks(_metrics(oe=1.2), PromotionSettings())
    assert not ok and "no interval" in reasons[1]


@pytest.mark.parametrize(
    ("promotion", "key"),
    [
        ({"calibration_evidence": "sometimes"}, "calibration_evidence"),
        ({"oe_material": [1.25, 0.8]}, "oe_material"),
        ({"slope_material": [0, 1.25]}, "slope_material"),
    ],
)
def test_invalid_gate_settings_fail_naming_the_key(tmp_path, promotion, key):
    import yaml

    from riskstrat.errors import SettingsError
    from riskstrat.models.settings import ModelSettings
    from riskstrat.settings import load_settings

    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"promotion": promotion}))
    with pytest.raises(SettingsError) as error:
        load_settings(path, ModelSettings)
    assert f"promotion.{key}" in str(error.value)


def test_report_shows_no_oe_figures_when_the_event_count_is_suppressed():
    _, reasons, _ = calibration_checks(
        _calibration(oe=(1.3, 0.7, 2.4), events=5), PromotionSettings(), shown_events="*"
    )
    assert "(figures not shown: fewer than 8 events)" in reasons[0]
    assert "1.300" not in reasons[0] and " 5 events" not in " ".join(reasons)
