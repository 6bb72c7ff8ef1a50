"""Prefect deployments: the weekly worklists, the monthly audit and the quarterly retrain.

``riskstrat serve`` builds them with the schedules in ``configs/schedules.yaml``
and serves them from this process against Prefect's local server, so runs also
start from the Prefect UI. No Prefect account or network is needed.
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from riskstrat.pipelines.audit import fairness_audit_flow
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.retrain import retrain_flow
from riskstrat.pipelines.weekly import weekly_worklists_flow

DEPLOYMENT_NAMES: dict[str, str] = {
    "weekly_worklists": "weekly-worklists",
    "fairness_audit": "monthly-fairness-audit",
    "retrain": "quarterly-retrain",
}
"""Settings key in schedules.yaml -> deployment name shown in the Prefect UI."""


def build_deployments(config: Config) -> list[RunnerDeployment]:
    """Build one deployment per scheduled flow, with its cron schedule and parameters.

    Args:
        config: The loaded configuration (schedules and the config folder the runs use).

    Returns:
        The deployments, ready for :func:`prefect.serve`.
    """
    schedules = config.schedules
    parameters = {"config_dir": str(config.source_dir.resolve())}
    # With raw national files configured, each weekly run reads this week's files first.
    weekly_parameters = {**parameters, "read_national": config.sources.raw_dir is not None}
    flow_for = {
        "weekly_worklists": weekly_worklists_flow,
        "fairness_audit": fairness_audit_flow,
        "retrain": retrain_flow,
    }
    deployments = []
    for key, name in DEPLOYMENT_NAMES.items():
        schedule = getattr(schedules, key)
        deployments.append(
            flow_for[key].to_deployment(
                name=name,
                description=schedule.description,
                schedules=[Cron(schedule.cron, timezone=schedules.timezone, active=schedule.enabled)],
                parameters=weekly_parameters if key == "weekly_worklists" else parameters,
                tags=["riskstrat"],
            )
        )
    return deployments


def serve_deployments(config: Config) -> None:
    """Register the deployments with Prefect's local server and serve them until interrupted."""
    serve(*build_deployments(config))
