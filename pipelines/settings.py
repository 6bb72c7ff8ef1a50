"""Settings for the Prefect deployments and their schedules (``configs/schedules.yaml``)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator

from riskstrat.settings import Settings


class DeploymentSchedule(Settings):
    """One scheduled deployment."""

    cron: str = Field(description="Cron expression (minute hour day-of-month month day-of-week).")
    enabled: bool = Field(True, description="Whether the schedule is active when served.")
    description: str = Field("", description="What the scheduled run is for, shown in the Prefect UI.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            CronSim(value, datetime(2026, 1, 1))
        except CronSimError as exc:
            raise ValueError(
                f"not a valid cron expression ({exc}); e.g. '0 6 * * 1' is Mondays at 06:00"
            ) from None
        return value


class ScheduleSettings(Settings):
    """Deployments that ``riskstrat serve`` registers, and when they run (``configs/schedules.yaml``)."""

    timezone: str = Field("Europe/London", description="Time zone the cron expressions are read in.")
    weekly_worklists: DeploymentSchedule = Field(
        DeploymentSchedule(cron="0 6 * * 1", description="Weekly MDT worklists, Monday 06:00."),
        description="The weekly worklist run.",
    )
    fairness_audit: DeploymentSchedule = Field(
        DeploymentSchedule(cron="0 7 1 * *", description="Monthly fairness audit of the champion models."),
        description="The monthly fairness audit on the champion.",
    )
    retrain: DeploymentSchedule = Field(
        DeploymentSchedule(cron="0 5 1 1,4,7,10 *", description="Quarterly retrain and gated promotion."),
        description="The quarterly retrain.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as 'Europe/London'") from None
        return value
