"""MLflow round trip and gated promotion, on SQLite tracking in a temporary folder."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from synthetic_training import FEATURES, fast_settings

from riskstrat.evaluation.training_figures import close_figures, training_figures
from riskstrat.models.promotion import decide, promote
from riskstrat.models.registry import CHALLENGER, CHAMPION, alias_version, load_model, log_training_run
from riskstrat.models.scoring import load_champion, score

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
