"""Prefect deployments: the weekly worklists, the monthly audit and the quarterly retrain.

``riskstrat serve`` builds them with the schedules in ``configs/schedules.yaml``
and serves them from this process against Prefect's local server, so runs also
start from the Prefect UI. No Prefect account or network is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

    from riskstrat.config import Config

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
    from prefect.schedules import Cron

    from riskstrat.pipelines import flows

    schedules = config.schedules
    parameters = {"config_dir": str(config.source_dir.resolve())}
    flow_for = {
        "weekly_worklists": flows.weekly_worklists_flow,
        "fairness_audit": flows.fairness_audit_flow,
        "retrain": flows.retrain_flow,
    }
    deployments = []
    for key, name in DEPLOYMENT_NAMES.items():
        schedule = getattr(schedules, key)
        deployments.append(
            flow_for[key].to_deployment(
                name=name,
                description=schedule.description,
                schedules=[Cron(schedule.cron, timezone=schedules.timezone, active=schedule.enabled)],
                parameters=parameters,
                tags=["riskstrat"],
            )
        )
    return deployments


def serve_deployments(config: Config) -> None:
    """Register the deployments with Prefect's local server and serve them until interrupted."""
    from prefect import serve

    serve(*build_deployments(config))
