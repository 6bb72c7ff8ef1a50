import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from fairness_data import fast_settings, synthetic_predictions, synthetic_selections

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.audit_rows import split_audit_rows
from riskstrat.evaluation.fairness import run_audit
from riskstrat.pipelines.audit import (
    AUDIT_ROWS_TAG,
    fairness_audit,
    log_report_task,
    report_stem,
    rows_stem,
    store_rows_task,
    write_report_task,
)

LSOAS = ("E01009719", "E01009921", "E01010241")  # Dudley, Sandwell, Walsall


def _predictions(n: int, seed: int) -> pd.DataFrame:
    """Synthetic test rows living in three districts, with practices (so the place groupings are audited)."""
    predictions = synthetic_predictions(n=n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    predictions["lsoa_code"] = rng.choice(LSOAS, size=n)
    predictions["practice_code"] = np.where(predictions["mdt"] == "North", "M80001", "M80002")
    return predictions


def test_report_files_are_written_under_reports(tmp_path, scenario_report, model_info):
    html, payload = scenario_report
    html_path, json_path = write_report_task.fn(html, payload, tmp_path, report_stem(model_info))
    assert (
        html_path
        == tmp_path / "reports" / "fairness_emergency_admission_riskstrat-emergency_admission_v3.html"
    )
    assert json.loads(json_path.read_text())["model"]["model_version"] == "3"
    assert not [p for p in (tmp_path / "reports").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_audit_flow_writes_and_logs_to_the_model_run(tmp_path, prefect_harness, model_info):
    from mlflow.tracking import MlflowClient

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.create_experiment("audit", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    predictions = _predictions(n=2_000, seed=21)
    result = fairness_audit(
        predictions,
        synthetic_selections(predictions),
        fast_settings(bootstrap_n=20),
        model_info,
        tmp_path / "outputs",
        run_id=run_id,
        tracking_uri=tracking_uri,
    )
    assert result.html_path.exists() and result.json_path.exists()
    logged = {a.path for a in client.list_artifacts(run_id, "fairness_report")}
    assert logged == {f"fairness_report/{result.html_path.name}", f"fairness_report/{result.json_path.name}"}
    assert all(f.status == "raised" for f in result.open_flags)
    # The audited rows stay beside the feature cache; the run and the report carry only their hash.
    assert result.rows_path.parent == tmp_path / "outputs" / "features" / "audited"
    assert result.rows_sha256 == hashlib.sha256(result.rows_path.read_bytes()).hexdigest()
    assert client.get_run(run_id).data.tags[AUDIT_ROWS_TAG] == result.rows_sha256
    assert result.rows_sha256 in result.html_path.read_text(encoding="utf-8")
    assert not any(".parquet" in a.path for a in client.list_artifacts(run_id, "fairness_report"))


def test_log_task_logs_each_file(tmp_path, monkeypatch):
    calls = []

    class FakeClient:
        def __init__(self, tracking_uri):
            calls.append(("uri", tracking_uri))

        def log_artifact(self, run_id, path, artifact_path):
            calls.append((run_id, path, artifact_path))

    monkeypatch.setattr("riskstrat.pipelines.audit.MlflowClient", FakeClient)
    log_report_task.fn((tmp_path / "a.html", tmp_path / "a.json"), "run1", "sqlite:///x.db")
    assert calls == [
        ("uri", "sqlite:///x.db"),
        ("run1", str(tmp_path / "a.html"), "fairness_report"),
        ("run1", str(tmp_path / "a.json"), "fairness_report"),
    ]


def test_the_stored_rows_recompute_the_same_audit_and_their_hash_is_the_file(tmp_path, model_info):
    predictions = _predictions(n=3_000, seed=23)
    selections = synthetic_selections(predictions)
    settings = fast_settings(bootstrap_n=20)
    path, digest = store_rows_task.fn(predictions, selections, settings, tmp_path, rows_stem(model_info))

    assert path == tmp_path / "features" / "audited" / (
        "audit_rows_emergency_admission_riskstrat-emergency_admission_v3.parquet"
    )
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    stored = pd.read_parquet(path)
    assert {"person_id", "as_of", "y", "p", "mdt", "selected", "lsoa_code", "ltc_count"} <= set(
        stored.columns
    )

    original = run_audit(predictions, selections, settings)
    again = run_audit(*split_audit_rows(stored), settings)
    assert {g.name for g in again.groupings} >= {"local_authority", "mdt", "gp_practice"}
    assert [g.groups for g in again.groupings] == [g.groups for g in original.groupings]
    for table in ("performance", "lists", "need_ratios", "need_ranking", "calibration"):
        pd.testing.assert_frame_equal(getattr(again, table), getattr(original, table), obj=table)
    assert [(f.flag_id, f.status, f.estimate) for f in again.flags] == [
        (f.flag_id, f.status, f.estimate) for f in original.flags
    ]


def test_rows_whose_lists_hold_other_people_are_refused(tmp_path, model_info):
    predictions = _predictions(n=500, seed=25)
    selections = synthetic_selections(predictions).iloc[1:]
    with pytest.raises(RiskstratError, match="same people"):
        store_rows_task.fn(predictions, selections, fast_settings(), tmp_path, rows_stem(model_info))
    assert not (tmp_path / "features" / "audited").exists() or not any(
        (tmp_path / "features" / "audited").iterdir()
    )
