"""The weekly run's monitor step and ``riskstrat monitor`` on a small generated population.

One module fixture generates about 3,000 people, registers a quick champion per
outcome (with its drift reference, as the retrain flow logs it) and publishes two
weeks: one four months before the extract date and one a week before it, so the
first week's 90-day early read matures in the second. Then one practice's GP
appointments stop reaching the extract for its last three weeks: the third
weekly run must fail before publishing, name the practice, leave the published
weeks untouched and still write the monitoring page; ``riskstrat monitor`` on the
same extract must exit non-zero.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskstrat.catalog import output_catalog
from riskstrat.pipelines.config import write_relocated_config

pytestmark = pytest.mark.filterwarnings("ignore:.*input example was not provided:UserWarning")

PEOPLE = 3_000
SEED = 11
EXTRACT_DATE = date(2025, 12, 31)
TRAIN_AS_OF = date(2024, 12, 31)
EARLY_WEEK, EARLY_DATE = date(2025, 9, 1), date(2025, 8, 31)  # 90-day window ends 2025-11-29
LAST_WEEK, LAST_DATE = date(2025, 12, 29), date(2025, 12, 28)
STOP_WEEK, STOP_DATE = date(2026, 1, 5), EXTRACT_DATE
STOP_FROM = date(2025, 12, 11)  # the practice's appointments from this day are missing


def _register_champion(
    outcome: str, matrix: pd.DataFrame, names: list[str], uri: str, model_name: str
) -> str:
    """Fit a small LightGBM, register it as champion with its drift reference; returns its run ID."""
    import lightgbm as lgb
    import mlflow

    from riskstrat.evaluation.monitoring_settings import MonitoringSettings
    from riskstrat.models.calibration import fit_platt
    from riskstrat.models.registry import PIP_REQUIREMENTS, CalibratedLightGBM, model_signature, tracking
    from riskstrat.models.training import RiskModel
    from riskstrat.pipelines.monitor import log_reference, reference_for

    x = matrix[names].to_numpy(dtype=np.float64, na_value=np.nan)
    y = matrix[outcome].to_numpy(dtype=np.int64)
    params = {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 20, "verbose": -1, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(x, y, feature_name=names), num_boost_round=40)
    calibrator = fit_platt(booster.predict(x), y)
    with tracking(uri) as client, mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        booster.save_model(str(Path(tmp) / "booster.txt"))
        meta = {"outcome": outcome, "feature_names": names, "calibrator": calibrator.to_dict()}
        (Path(tmp) / "risk_model.json").write_text(json.dumps(meta))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=CalibratedLightGBM(),
            artifacts={"booster": str(Path(tmp) / "booster.txt"), "meta": str(Path(tmp) / "risk_model.json")},
            signature=model_signature(names),
            registered_model_name=model_name,
            pip_requirements=PIP_REQUIREMENTS,
        )
        client.set_registered_model_alias(model_name, "champion", str(info.registered_model_version))
        mlflow.log_metric("test_auroc", 0.75)  # as the retrain flow logs it
        run_id = run.info.run_id
    model = RiskModel(outcome, booster, names, calibrator)
    log_reference(
        run_id, uri, reference_for(model.predict_proba(matrix), matrix, model, outcome, MonitoringSettings())
    )
    return run_id


def _stop_one_practice(extract: Path) -> str:
    """Remove the largest practice's GP appointments dated from STOP_FROM; return its code."""
    patients = pd.read_parquet(extract / "patients.parquet", columns=["person_id", "practice_code"])
    practice = patients["practice_code"].value_counts().index[0]
    people = set(patients.loc[patients["practice_code"] == practice, "person_id"])
    path = extract / "gp_appointments.parquet"
    appointments = pd.read_parquet(path)
    day = pd.to_datetime(appointments["appointment_date"]).dt.date
    keep = ~(appointments["person_id"].isin(people) & (day >= STOP_FROM))
    assert (~keep).sum() > 50
    appointments[keep].to_parquet(path, index=False)
    return str(practice)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, prefect_harness):
    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.pipelines.config import load_config
    from riskstrat.pipelines.features import build_feature_file, read_feature_matrix
    from riskstrat.pipelines.generate import write_synthetic
    from riskstrat.pipelines.weekly import weekly_worklists_flow

    root = tmp_path_factory.mktemp("monitor")
    out = root / "outputs"
    config_dir = write_relocated_config(
        root / "configs", out, {"data.yaml": {"extract_date": EXTRACT_DATE.isoformat()}}
    )
    config = load_config(config_dir)
    write_synthetic(out, PEOPLE, SEED, config.synthetic)
    training = read_feature_matrix(
        build_feature_file(
            out / "extract", out, TRAIN_AS_OF, config.features, config.outcomes, config.data.extract_date
        )
    )
    names = list(feature_dictionary(config.features))
    uri = config.model.mlflow.resolved_tracking_uri(out)
    runs = {
        outcome: _register_champion(outcome, training, names, uri, model_name)
        for outcome, model_name in config.model.mlflow.registered_models.items()
    }
    early = Path(weekly_worklists_flow(str(config_dir), week=EARLY_WEEK, as_of=EARLY_DATE))
    last = Path(weekly_worklists_flow(str(config_dir), week=LAST_WEEK, as_of=LAST_DATE))
    published = {p.name: p.read_bytes() for p in sorted(last.iterdir())}
    practice = _stop_one_practice(out / "extract")
    try:
        weekly_worklists_flow(str(config_dir), week=STOP_WEEK, as_of=STOP_DATE)
        stopped = None
    except Exception as exc:  # the flow run fails with the monitor task's error
        stopped = exc
    return {
        "out": out,
        "config_dir": config_dir,
        "uri": uri,
        "runs": runs,
        "early": early,
        "last": last,
        "published": published,
        "practice": practice,
        "stopped": stopped,
    }


@pytest.mark.slow
def test_the_weekly_run_writes_the_page_json_and_scores(monitored):
    outputs = output_catalog(monitored["out"])
    for week in (EARLY_WEEK, LAST_WEEK):
        assert outputs.monitoring_page(week).is_file()
        payload = json.loads(outputs.monitoring_json(week).read_text())
        assert payload["week"] == week.isoformat() and payload["published"] is True
        assert payload["status"] != "critical", payload["alarms"]
        html = outputs.monitoring_page(week).read_text()
        assert "Alarms" in html and "data:image/png;base64," in html
    scores = pd.read_parquet(outputs.monitoring_scores(LAST_WEEK))
    assert list(scores.columns[:5]) == ["week", "data_date", "person_id", "practice_code", "mdt"]
    assert scores["person_id"].is_unique and len(scores) > 0.5 * PEOPLE
    assert scores["mdt"].notna().all()
    assert scores["p_emergency_admission"].between(0, 1).all()
    history = pd.read_parquet(outputs.monitoring_history)
    assert {"estimated_auroc", "psi_score", "test_auroc"} <= set(history["metric"])
    assert set(pd.to_datetime(history["week"]).dt.date) >= {EARLY_WEEK, LAST_WEEK}


@pytest.mark.slow
def test_metrics_are_logged_on_the_champions_run(monitored):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=monitored["uri"])
    run_id = monitored["runs"]["emergency_admission"]
    estimated = client.get_metric_history(run_id, "monitor_estimated_auroc")
    assert {m.step for m in estimated} >= {EARLY_WEEK.toordinal(), LAST_WEEK.toordinal()}
    assert all(0.5 < m.value < 1 for m in estimated)
    assert client.get_metric_history(run_id, "monitor_psi_score")
    assert client.get_metric_history(run_id, "monitor_feed_critical")
    # The early week's 90-day read matured in the second week and is logged at the early week.
    realised = client.get_metric_history(run_id, "monitor_realised_oe_90d")
    assert [m.step for m in realised] == [EARLY_WEEK.toordinal()]


@pytest.mark.slow
def test_realised_performance_of_the_matured_week_is_recomputed_from_scores_and_outcomes(monitored):
    from riskstrat.evaluation.realised import expected_within
    from riskstrat.features.backends import connect_duckdb, read_extract
    from riskstrat.features.outcomes import outcomes_at
    from riskstrat.features.settings import OutcomeSettings

    outputs = output_catalog(monitored["out"])
    realised = pd.read_parquet(outputs.monitoring_realised)
    realised["week"] = pd.to_datetime(realised["week"]).dt.date
    mine = realised[(realised["week"] == EARLY_WEEK) & (realised["outcome"] == "emergency_admission")]
    assert set(mine["horizon_days"]) == {90}  # the full year has not passed
    overall = mine[mine["cut"] == "overall"].iloc[0]
    # Independently: the stored scores, and the outcome over 90 days from the extract.
    scores = pd.read_parquet(outputs.monitoring_scores(EARLY_WEEK))
    tables = read_extract(connect_duckdb(), monitored["out"] / "extract")
    settings = OutcomeSettings.model_validate({"emergency_admission": {"horizon_days": 90}})
    people = tables["patients"].select("person_id", "date_of_death")
    labels = outcomes_at(people, tables, EARLY_DATE, settings).to_pandas().set_index("person_id")
    events = labels["emergency_admission"].reindex(scores["person_id"]).fillna(0).to_numpy()
    expected = expected_within(scores["p_emergency_admission"].to_numpy(), 90, 365)
    assert overall["n"] == len(scores)
    assert overall["events"] == events.sum()
    assert overall["oe"] == pytest.approx(events.sum() / expected.sum(), rel=1e-9)


@pytest.mark.slow
def test_a_stopped_practice_feed_fails_the_week_before_publishing(monitored):
    from riskstrat.pipelines.monitor import MonitoringAlarmError

    stopped = monitored["stopped"]
    assert isinstance(stopped, MonitoringAlarmError), stopped
    message = stopped.message
    assert "gp_appointments" in message and monitored["practice"] in message
    assert "2025-12-31" in message  # the weeks
    outputs = output_catalog(monitored["out"])
    # Not published; the last published week is byte for byte as it was.
    assert not outputs.week(STOP_WEEK).exists()
    # (The folder also holds the generator's simulated deployment weeks.)
    published = {p.name for p in outputs.worklists.iterdir()}
    assert {EARLY_WEEK.isoformat(), LAST_WEEK.isoformat()} <= published
    assert {p.name: p.read_bytes() for p in sorted(monitored["last"].iterdir())} == monitored["published"]
    # The page says why.
    payload = json.loads(outputs.monitoring_json(STOP_WEEK).read_text())
    assert payload["status"] == "critical" and payload["published"] is False
    assert any(a["level"] == "critical" and monitored["practice"] in a["message"] for a in payload["alarms"])
    assert "not published" in outputs.monitoring_page(STOP_WEEK).read_text()


@pytest.mark.slow
def test_the_monitor_command_exits_non_zero_on_a_critical_alarm(monitored):
    from riskstrat.pipelines.cli import app

    week = STOP_WEEK + timedelta(days=7)
    result = CliRunner().invoke(
        app,
        ["--config-dir", str(monitored["config_dir"]), "monitor", "--week", week.isoformat()],
    )
    assert result.exit_code == 1, result.output
    # It publishes nothing, so it says it found the alarm, not that it stopped a publication.
    assert "found 1 critical alarm" in result.output and monitored["practice"] in result.output
    assert "before publishing" not in result.output and "stay published" not in result.output
    outputs = output_catalog(monitored["out"])
    assert outputs.monitoring_on_demand_page(week).is_file()
    assert not outputs.monitoring_page(week).exists() and not outputs.monitoring_scores(week).exists()


@pytest.mark.slow
def test_the_monitor_command_leaves_a_published_weeks_records_as_they_were(monitored):
    from riskstrat.pipelines.cli import app

    outputs = output_catalog(monitored["out"])
    kept = [
        outputs.monitoring_scores(LAST_WEEK),
        outputs.monitoring_page(LAST_WEEK),
        outputs.monitoring_json(LAST_WEEK),
        outputs.monitoring_history,
    ]
    before = {path: path.read_bytes() for path in kept}
    result = CliRunner().invoke(
        app,
        ["--config-dir", str(monitored["config_dir"]), "monitor", "--week", LAST_WEEK.isoformat()],
    )
    assert result.exit_code == 1, result.output  # the stopped practice feed is still in the extract
    assert {path: path.read_bytes() for path in kept} == before
    payload = json.loads(outputs.monitoring_on_demand_json(LAST_WEEK).read_text())
    assert payload["on_demand"] is True and payload["published"] is False
    assert payload["data_date"] == EXTRACT_DATE.isoformat()
    assert "Checked on demand" in outputs.monitoring_on_demand_page(LAST_WEEK).read_text()


def test_an_invalid_monitoring_file_stops_the_run_naming_the_setting(tmp_path):
    from riskstrat.pipelines.config import load_config
    from riskstrat.settings import SettingsError

    write_relocated_config(tmp_path, tmp_path / "out")
    (tmp_path / "monitoring.yaml").write_text("feed_health:\n  warning_ratio: 1.5\n")
    with pytest.raises(SettingsError, match=r"monitoring\.yaml") as raised:
        load_config(tmp_path)
    assert "warning_ratio" in str(raised.value)


def test_the_shipped_settings_monitor_every_weekly_run():
    from riskstrat.pipelines.config import load_config
    from riskstrat.settings import REPO_CONFIG_DIR

    monitoring = load_config(REPO_CONFIG_DIR).monitoring
    assert monitoring.enabled and monitoring.stop_on_critical
    assert set(monitoring.stop_checks) == {"feed", "stale"}


def test_a_weeks_scores_are_stored_with_their_models(tmp_path):
    from riskstrat.pipelines.monitor import stored_models, week_scores, write_week_scores

    scored = pd.DataFrame(
        {
            "person_id": ["a", "b", "c"],
            "practice_code": ["P1", "P2", None],
            "age": [70, 40, 55],
            "p_emergency_admission": [0.2, 0.01, np.nan],
        }
    )
    table = week_scores(scored, LAST_WEEK, LAST_DATE, {"P1": "North"}, ["emergency_admission"])
    path = write_week_scores(tmp_path / "w.parquet", table, {"emergency_admission": "emergency_admission v3"})
    stored = pd.read_parquet(path)
    assert list(stored.columns) == [
        "week",
        "data_date",
        "person_id",
        "practice_code",
        "mdt",
        "p_emergency_admission",
    ]
    assert stored["mdt"].iloc[0] == "North" and stored["mdt"].iloc[1:].isna().all()
    assert stored["week"].iloc[0] == LAST_WEEK and stored["p_emergency_admission"].isna().tolist() == [
        False,
        False,
        True,
    ]
    assert stored_models(path) == {"emergency_admission": "emergency_admission v3"}


def test_an_on_demand_alarm_says_it_found_it_and_publishes_nothing(tmp_path):
    from riskstrat.evaluation.alarms import Alarm
    from riskstrat.evaluation.monitoring_settings import MonitoringSettings
    from riskstrat.pipelines.monitor import MonitoringAlarmError, MonitoringRun, stop_if_critical

    alarm = Alarm("stale", "critical", "apc_spells", "apc_spells: its latest event is old")
    run = MonitoringRun(
        LAST_WEEK, LAST_DATE, [alarm], tmp_path / "on-demand.html", tmp_path / "j.json", on_demand=True
    )
    with pytest.raises(MonitoringAlarmError) as raised:
        stop_if_critical(run, MonitoringSettings())
    message = raised.value.message + " " + (raised.value.hint or "")
    assert "found 1 critical alarm" in message and "apc_spells" in message
    assert "before publishing" not in message and "stay published" not in message
    weekly = MonitoringRun(LAST_WEEK, LAST_DATE, [alarm], tmp_path / "m.html", tmp_path / "m.json")
    with pytest.raises(MonitoringAlarmError, match="before publishing"):
        stop_if_critical(weekly, MonitoringSettings())


def test_the_on_demand_page_sits_beside_the_weekly_one(tmp_path):
    outputs = output_catalog(tmp_path)
    assert outputs.monitoring_on_demand_page(LAST_WEEK).parent == outputs.monitoring_week(LAST_WEEK)
    assert outputs.monitoring_on_demand_page(LAST_WEEK) != outputs.monitoring_page(LAST_WEEK)
    assert outputs.monitoring_on_demand_json(LAST_WEEK) != outputs.monitoring_json(LAST_WEEK)


def test_history_keeps_one_set_of_rows_per_week(tmp_path):
    from riskstrat.pipelines.monitor import append_history

    path = tmp_path / "history.parquet"

    def rows(week, value):
        return pd.DataFrame(
            [(week, LAST_DATE, "emergency_admission", "estimated_auroc", value, "m v1")],
            columns=["week", "data_date", "outcome", "metric", "value", "model"],
        )

    append_history(path, rows(EARLY_WEEK, 0.8))
    append_history(path, rows(LAST_WEEK, 0.7))
    history = append_history(path, rows(LAST_WEEK, 0.75))  # a rerun of the week replaces its rows
    assert history["value"].tolist() == [0.8, 0.75]


def test_a_fault_in_the_checks_does_not_hold_back_the_lists(monitored, monkeypatch):
    """Only a critical alarm stops the week; a bug in the checks is logged and the lists still go out."""
    from riskstrat.pipelines import weekly

    def broken(*args, **kwargs):
        raise RuntimeError("a fault in the checks")

    monkeypatch.setattr(weekly, "monitor_task", broken)
    week, as_of = date(2025, 11, 24), date(2025, 11, 23)  # before the stopped practice's gap
    folder = Path(weekly.weekly_worklists_flow(str(monitored["config_dir"]), week=week, as_of=as_of))
    assert folder == output_catalog(monitored["out"]).week(week)
    assert list(folder.glob("*.xlsx")) and (folder / "manifest.json").is_file()
