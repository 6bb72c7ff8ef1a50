import json

import pytest
from fairness_data import fast_settings, synthetic_predictions, synthetic_selections

from riskstrat.pipelines.audit import fairness_audit, log_report_task, report_stem, write_report_task


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
    predictions = synthetic_predictions(n=2_000, seed=21)
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
