"""Deployments are built with the expected names, flows, schedules and parameters."""

from dataclasses import replace

from riskstrat.pipelines.config import load_config
from riskstrat.pipelines.deployments import build_deployments
from riskstrat.settings import REPO_CONFIG_DIR


def test_deployments_have_the_configured_schedules():
    config = load_config(REPO_CONFIG_DIR)
    deployments = {d.name: d for d in build_deployments(config)}
    assert set(deployments) == {"weekly-worklists", "monthly-fairness-audit", "quarterly-retrain"}
    expected = {
        "weekly-worklists": ("weekly_worklists", "0 6 * * 1"),
        "monthly-fairness-audit": ("fairness_audit", "0 7 1 * *"),
        "quarterly-retrain": ("retrain", "0 5 1 1,4,7,10 *"),
    }
    for name, (flow_name, cron) in expected.items():
        deployment = deployments[name]
        assert deployment.flow_name == flow_name
        (schedule,) = deployment.schedules
        assert schedule.schedule.cron == cron
        assert schedule.schedule.timezone == "Europe/London"
        assert deployment.parameters["config_dir"] == str(REPO_CONFIG_DIR.resolve())


def test_the_weekly_run_reads_the_raw_national_files_first_only_when_a_raw_folder_is_set():
    config = load_config(REPO_CONFIG_DIR)
    weekly = {d.name: d for d in build_deployments(config)}["weekly-worklists"]
    assert weekly.parameters["read_national"] is (config.sources.raw_dir is not None)
    contract_only = replace(config, sources=config.sources.model_copy(update={"raw_dir": None}))
    weekly = {d.name: d for d in build_deployments(contract_only)}["weekly-worklists"]
    assert weekly.parameters["read_national"] is False
    others = [d for d in build_deployments(config) if d.name != "weekly-worklists"]
    assert all("read_national" not in d.parameters for d in others)
