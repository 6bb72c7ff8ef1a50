"""Settings of the weekly monitoring between retrains (``configs/monitoring.yaml``).

Four checks, each with its own section: feed health (event volumes per practice
and per code group against their own recent history, coverage and stale
sources), drift (population stability index of the champion's scores and its
most important features against the training reference), estimated performance
before outcomes arrive (confidence-based performance estimation) and realised
performance once outcomes have matured (observed against expected events and
AUROC). Decisions recorded here (each a setting):

* A feed cell alarms only when its change is both large (beyond a ratio) and
  statistically clear: a negative-binomial test whose over-dispersion is
  estimated from the practice's own baseline weeks, Bonferroni-corrected across
  every cell checked in one run so the whole weekly run raises a false alarm
  with probability at most ``false_alarm_rate``.
* Only the checks in ``stop_checks`` stop the weekly run on a critical alarm: a
  broken feed makes the lists wrong (people whose records stopped look healthy
  and drop off); a drifted population makes them less certain, which the board
  should read, not a reason to leave MDTs without a list.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from riskstrat.settings import Settings

CHECKS = ("feed", "stale", "coverage", "drift", "estimated", "realised")
"""Every kind of monitoring alarm (``Alarm.check``)."""

Check = Literal["feed", "stale", "coverage", "drift", "estimated", "realised"]

DEFAULT_TABLES = (
    "gp_appointments",
    "gp_medications",
    "gp_diagnoses",
    "community_contacts",
    "ae_attendances",
    "apc_spells",
)
"""Event tables whose weekly volumes are watched (every contract table dated by an event, but the caseload)."""

MonitoredTable = Literal[
    "gp_appointments", "gp_medications", "gp_diagnoses", "community_contacts", "ae_attendances", "apc_spells"
]


class FeedHealthSettings(Settings):
    """How event volumes per practice and week are judged against each practice's own history."""

    tables: tuple[MonitoredTable, ...] = Field(
        DEFAULT_TABLES,
        min_length=1,
        description="Event tables whose weekly volumes per practice are checked.",
    )
    baseline_weeks: int = Field(
        26,
        ge=4,
        le=104,
        description=(
            "Weeks of each practice's own history, before the recent weeks, that set its usual weekly "
            "rate of events per registered person and how much that rate varies from week to week."
        ),
    )
    recent_weeks: int = Field(
        4,
        ge=1,
        le=13,
        description=(
            "Most recent weeks checked, each on its own and all pooled (pooling catches a drop too small "
            "to be clear in one week of a small practice)."
        ),
    )
    warning_ratio: float = Field(
        0.6,
        gt=0,
        lt=1,
        description=(
            "A week at or below this share of the usual volume, or at or above its inverse, is a warning "
            "(0.6, not 0.5: a halving must alarm, and at 0.5 noise would hide about half of them)."
        ),
    )
    critical_ratio: float = Field(
        0.2,
        gt=0,
        lt=1,
        description=(
            "A week at or below this share of the usual volume, or at or above its inverse, is critical "
            "(the weekly run stops before publishing when stop_on_critical is true)."
        ),
    )
    false_alarm_rate: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description=(
            "Chance that a weekly run with stable feeds raises a volume alarm: the significance level, "
            "Bonferroni-corrected across every cell checked in the run."
        ),
    )
    min_expected_events: float = Field(
        5,
        gt=0,
        description="Cells expecting fewer events than this are reported but never alarm (too few to judge).",
    )
    stale_days: int = Field(
        14,
        ge=1,
        description="A source whose latest event is more days before the extract's data date than this is critical.",
    )
    max_data_age_days: int = Field(
        14,
        ge=0,
        description=(
            "A warning (not a stop) when the Monday the lists are for is more than this many days after the "
            "extract's data date: the data as a whole are old."
        ),
    )
    coverage_drop: float = Field(
        0.2,
        gt=0,
        lt=1,
        description=(
            "A warning when the share of registered people with any record in a source over the last "
            "365 days has fallen by this fraction since the start of the baseline."
        ),
    )
    code_groups: dict[MonitoredTable, str] = Field(
        default_factory=lambda: {"gp_diagnoses": "condition"},
        description=(
            "Table: column whose values are checked ICS-wide week by week (a coding change that halves "
            "one condition's records must alarm)."
        ),
    )

    @model_validator(mode="after")
    def _critical_beyond_warning(self) -> FeedHealthSettings:
        if self.critical_ratio >= self.warning_ratio:
            raise ValueError(
                f"critical_ratio ({self.critical_ratio}) must be below warning_ratio ({self.warning_ratio})"
            )
        return self


class DriftSettings(Settings):
    """How the champion's scores and top features are compared with its training reference."""

    top_features: int = Field(
        10, ge=1, le=100, description="Features watched per outcome: the champion's most important by gain."
    )
    bins: int = Field(
        10,
        ge=2,
        le=100,
        description=(
            "Quantile bins of the reference; a feature with at most this many distinct values is binned by value."
        ),
    )
    psi_warning: float = Field(
        0.1, gt=0, description="Population stability index at or above this is a warning (moderate shift)."
    )
    psi_critical: float = Field(
        0.25, gt=0, description="Population stability index at or above this is critical (major shift)."
    )

    @model_validator(mode="after")
    def _critical_beyond_warning(self) -> DriftSettings:
        if self.psi_critical <= self.psi_warning:
            raise ValueError(
                f"psi_critical ({self.psi_critical}) must be above psi_warning ({self.psi_warning})"
            )
        return self


class EstimationSettings(Settings):
    """Performance estimated from the calibrated scores alone, before outcomes arrive."""

    draws: int = Field(
        200,
        ge=20,
        le=10_000,
        description="Monte Carlo draws of outcomes from the calibrated scores for the estimate's 95% interval.",
    )
    seed: int = Field(20240101, description="Seed of the draws, so a rerun gives the same interval.")
    auroc_drop_warning: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description=(
            "A warning when this week's estimated AUROC is this much below the reference's estimate "
            "and its whole interval lies below the reference's."
        ),
    )


class RealisedSettings(Settings):
    """Realised performance of published weeks once their outcome window has passed."""

    early_read_days: int = Field(
        90,
        ge=7,
        description="Days after a week's data date for the early read (events so far against expected).",
    )
    oe_tolerance: float = Field(
        1.2,
        gt=1,
        description="A warning when the observed/expected interval lies wholly outside [1/this, this].",
    )
    auroc_drop_warning: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description=(
            "A warning when the realised AUROC is this much below the champion's test AUROC and its "
            "whole interval lies below it."
        ),
    )
    deciles: int = Field(
        10, ge=2, le=100, description="Bands of expected risk (10 = deciles) in the outcome report."
    )
    min_events: int = Field(
        10,
        ge=1,
        description="Groups expecting fewer events than this are reported but never alarm (too few to judge).",
    )


class MonitoringSettings(Settings):
    """Weekly monitoring between retrains: feed health, drift, estimated and realised performance."""

    enabled: bool = Field(True, description="Run monitoring in every weekly run (after the gate).")
    stop_on_critical: bool = Field(
        True,
        description="Stop the weekly run before publishing when a check in stop_checks raises a critical alarm.",
    )
    stop_checks: tuple[Check, ...] = Field(
        ("feed", "stale"),
        description="Checks whose critical alarms stop the weekly run (the others are reported only).",
    )
    feed_health: FeedHealthSettings = Field(
        default_factory=FeedHealthSettings, description="Event volumes, coverage and stale sources."
    )
    drift: DriftSettings = Field(default_factory=DriftSettings, description="Score and feature drift.")
    estimation: EstimationSettings = Field(
        default_factory=EstimationSettings, description="Performance estimated before outcomes arrive."
    )
    realised: RealisedSettings = Field(
        default_factory=RealisedSettings, description="Realised performance as outcomes mature."
    )
