"""Settings of the feature build (``configs/features.yaml``) and of the outcomes (``configs/outcomes.yaml``).

Both are typed models: a wrong key or value stops the run at start-up with the
file, the key, the value and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, field_validator

from riskstrat.ingest.contract import EMERGENCY_ADMISSION_METHODS
from riskstrat.settings import Settings


class CohortSettings(Settings):
    """Who is in the population at an as-of date T."""

    min_age: int = Field(
        18,
        ge=0,
        le=120,
        description="Youngest age (whole years at T) in the cohort; younger people are left out.",
    )


class FeatureSettings(Settings):
    """How point-in-time features are built (``configs/features.yaml``)."""

    windows: tuple[int, ...] = Field(
        (30, 90, 365, 730),
        min_length=1,
        description=(
            "Look-back windows in days for windowed counts; a w-day window holds events dated "
            "in (T - w, T], so an event on T counts."
        ),
    )
    backend: Literal["duckdb", "pyspark"] = Field(
        "duckdb",
        description="Engine that runs the feature expressions: duckdb (embedded) or pyspark (scale-out).",
    )
    spark_master: str | None = Field(
        "local[2]",
        description=(
            "Spark master for the pyspark backend when no Spark session is active yet (local[2], "
            "spark://host:7077, yarn); empty = take it from spark-submit or spark-defaults. An active "
            "session (Databricks, a notebook) is always used as it is."
        ),
    )
    include_ethnicity: bool = Field(
        False,
        description=(
            "Add one-hot ethnic group features to the model. Off by default: ethnicity is kept as "
            "the audit column ethnic_group for the fairness audit, not used to predict."
        ),
    )
    cohort: CohortSettings = Field(
        default_factory=CohortSettings,
        description="Who is in the population at T (alive, registered, old enough).",
    )
    polypharmacy_min_bnf_sections: int = Field(
        5,
        ge=1,
        description=(
            "Distinct BNF sections issued in the 365 days to T at which the eFI polypharmacy deficit counts."
        ),
    )
    long_stay_min_days: int = Field(
        7,
        ge=1,
        description="Length of stay in days (known at T) from which a hospital spell counts as a long stay.",
    )
    readmission_days: int = Field(
        30,
        ge=1,
        description="An emergency admission within this many days of a previous discharge is a readmission.",
    )
    duckdb_threads: int | None = Field(
        None,
        ge=1,
        description="Threads DuckDB may use; empty = all cores.",
    )
    duckdb_memory_limit: str | None = Field(
        None,
        description="DuckDB memory limit such as '8GB'; empty = DuckDB's default (80% of RAM).",
    )

    @field_validator("windows")
    @classmethod
    def _windows_positive_and_unique(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 1 for w in value):
            raise ValueError("every window must be a whole number of days >= 1")
        if len(set(value)) != len(value):
            raise ValueError("windows must not repeat")
        return tuple(sorted(value))

    def fingerprint(self) -> str:
        """A short hash of the settings that change the feature matrix (not the engine tuning)."""
        payload = self.model_dump(
            mode="json", exclude={"backend", "spark_master", "duckdb_threads", "duckdb_memory_limit"}
        )
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


class EmergencyAdmissionSettings(Settings):
    """The emergency admission outcome."""

    horizon_days: int = Field(
        365,
        ge=1,
        description="Outcome window in days: an emergency admission in (T, T + horizon] is an event.",
    )
    additional_horizons_days: tuple[int, ...] = Field(
        (),
        description=(
            "Extra horizons, each giving a column emergency_admission_<h>d (e.g. [90]); empty = none."
        ),
    )
    death_counts_as_event: bool = Field(
        True,
        description="A death in the outcome window counts as an emergency admission (as in SPARRA).",
    )
    admission_methods: tuple[str, ...] = Field(
        EMERGENCY_ADMISSION_METHODS,
        min_length=1,
        description="ADMISSION METHOD codes that make a spell an emergency admission.",
    )

    @field_validator("additional_horizons_days")
    @classmethod
    def _horizons_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(h < 1 for h in value):
            raise ValueError("every horizon must be a whole number of days >= 1")
        return tuple(sorted(set(value)))


class FrequentAttendanceSettings(Settings):
    """The frequent A&E attendance outcome."""

    horizon_days: int = Field(
        365,
        ge=1,
        description="Outcome window in days: A&E attendances arriving in (T, T + horizon] are counted.",
    )
    min_attendances: int = Field(
        5,
        ge=1,
        description="A&E attendances in the window that make a frequent attender (British Red Cross: 5).",
    )


class OutcomeSettings(Settings):
    """What the models predict (``configs/outcomes.yaml``)."""

    emergency_admission: EmergencyAdmissionSettings = Field(
        default_factory=EmergencyAdmissionSettings,
        description="Emergency admission (or death) in the outcome window.",
    )
    frequent_attendance: FrequentAttendanceSettings = Field(
        default_factory=FrequentAttendanceSettings,
        description="Frequent A&E attendance in the outcome window.",
    )

    def fingerprint(self) -> str:
        """A short hash of every outcome setting."""
        payload = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
