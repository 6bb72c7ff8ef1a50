"""Deployments are built with the expected names, flows, schedules and parameters."""

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
