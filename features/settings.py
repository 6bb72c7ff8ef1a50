"""Settings of the feature build (``configs/features.yaml``) and of the outcomes (``configs/outcomes.yaml``).

Both are typed models: a wrong key or value stops the run at start-up with the
file, the key, the value and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from riskstrat.ingest import contract
from riskstrat.settings import Settings


def admission_method_lists() -> dict[str, list[str]]:
    """The contract's emergency and elective ADMISSION METHOD lists, for the settings fingerprints.

    Features, outcomes and need measures read these lists (features/point_in_time.py), so an
    edit to them must change the fingerprint that keys cached feature matrices.
    """
    return {
        "emergency": list(contract.EMERGENCY_ADMISSION_METHODS),
        "elective": list(contract.ELECTIVE_ADMISSION_METHODS),
    }


_DUCKDB_MEMORY = re.compile(r"(\d+(\.\d+)?)\s*(%|B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)
"""A DuckDB memory_limit value: a size with its unit, or a percentage of RAM."""


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
    hospital_lookback_days: int = Field(
        730,
        ge=1,
        description=(
            "Look-back in days for the hospital-diagnosis features (Hospital Frailty Risk Score, Charlson "
            "index, hospital-recorded long-term conditions): diagnoses of spells discharged in (T - days, T]. "
            "730 (2 years) is the Hospital Frailty Risk Score's own look-back; Charlson is used with 1 to 5 years."
        ),
    )
    recorded_efi_days: int = Field(
        730,
        ge=1,
        description=(
            "Look-back in days for recorded_efi: the latest eFI or eFI2 score the GP record holds "
            "(condition recorded_efi) dated in (T - days, T]; empty if none."
        ),
    )
    duckdb_threads: int | None = Field(
        None,
        ge=1,
        description="Threads DuckDB may use; empty = all cores.",
    )
    duckdb_memory_limit: str | None = Field(
        "50%",
        description=(
            "Most memory DuckDB may hold, as a size ('8GB', '6GiB') or a share of RAM ('50%'); past it "
            "DuckDB spills to duckdb_temp_directory instead of growing. The default leaves half of RAM "
            "for the feature matrices it returns and for Python. Empty = DuckDB's own default (80% of RAM)."
        ),
    )
    duckdb_temp_directory: str | None = Field(
        None,
        description=(
            "Folder DuckDB spills to when a query needs more than duckdb_memory_limit (created if absent); "
            "empty = riskstrat-duckdb in the system's temporary folder (TMPDIR)."
        ),
    )

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_limit(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _DUCKDB_MEMORY.fullmatch(value.strip()):
            raise ValueError(
                f"{value!r} is not a memory size: give a number and a unit (8GB, 6GiB, 512MB) or a share of RAM (50%)"
            )
        return value.strip()

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
            mode="json",
            exclude={
                "backend",
                "spark_master",
                "duckdb_threads",
                "duckdb_memory_limit",
                "duckdb_temp_directory",
            },
        )
        payload["admission_methods"] = admission_method_lists()
        payload["reference_lists"] = reference_lists_digest()
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


FEATURE_CODE_LISTS: tuple[str, ...] = ("icd10_hfrs", "icd10_charlson", "icd10_conditions")
"""Shipped code lists the features read (riskstrat.ingest.codelists)."""


def reference_lists_digest() -> str:
    """A hash of the data the features read besides the extract: the condition vocabulary and code lists.

    Part of the feature fingerprint, so an edited code list never reuses a cached matrix.
    """
    from riskstrat.ingest.codelists import manifest
    from riskstrat.ingest.reference import conditions

    digest = hashlib.sha256(conditions().to_csv(index=False).encode())
    shipped = manifest()
    for name in FEATURE_CODE_LISTS:
        digest.update(name.encode())
        if name in shipped:
            digest.update(shipped[name].path.read_bytes())
    return digest.hexdigest()[:12]


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

    @model_validator(mode="before")
    @classmethod
    def _admission_methods_moved(cls, data: Any) -> Any:
        # An earlier setting: kept as a named refusal so an old outcomes.yaml says where it went.
        if isinstance(data, dict) and "admission_methods" in data:
            raise ValueError(
                "admission_methods is no longer a setting: what counts as an emergency admission "
                "(ADMISSION METHOD 21-25, 2A-2D, 28) is one reference list in the data contract "
                "(riskstrat.ingest.contract.EMERGENCY_ADMISSION_METHODS), shared by the outcome, the "
                "features and the lists so they cannot disagree; delete the key"
            )
        return data

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
    """What the models predict (``configs/outcomes.yaml``): one section per registered outcome.

    The two shipped outcomes are fields (so the settings reference documents them); the
    section of any other registered outcome (:func:`riskstrat.features.outcomes.register_outcome`)
    is validated against its spec's settings model when the file is read, and a section
    that names no registered outcome is an error.
    """

    model_config = ConfigDict(extra="allow")

    emergency_admission: EmergencyAdmissionSettings = Field(
        default_factory=EmergencyAdmissionSettings,
        description="Emergency admission (or death) in the outcome window.",
    )
    frequent_attendance: FrequentAttendanceSettings = Field(
        default_factory=FrequentAttendanceSettings,
        description="Frequent A&E attendance in the outcome window.",
    )

    @model_validator(mode="before")
    @classmethod
    def _registered_sections(cls, data: Any) -> Any:
        # Imported here: riskstrat.features.outcomes imports this module for the section models.
        from riskstrat.features.outcomes import OUTCOMES

        if not isinstance(data, dict):
            return data
        sections = dict(data)
        for name in sections:
            if name not in cls.model_fields and name not in OUTCOMES:
                raise ValueError(f"unknown outcome {name!r}; the outcomes are {', '.join(OUTCOMES)}")
        for name, spec in OUTCOMES.items():
            if name in cls.model_fields:
                continue
            try:
                sections[name] = spec.settings_model.model_validate(sections.get(name, {}))
            except ValidationError as error:
                problems = "; ".join(
                    f"{name}.{'.'.join(map(str, e['loc']))} = {e.get('input')!r}: {e['msg']}"
                    for e in error.errors()
                )
                raise ValueError(problems) from None
        return sections

    def section(self, name: str) -> Settings:
        """The settings section of the registered outcome ``name``."""
        value = getattr(self, name, None)
        if not isinstance(value, Settings):
            raise KeyError(f"no settings section for outcome {name!r}")
        return value

    def fingerprint(self) -> str:
        """A short hash of every outcome setting and of the emergency admission methods."""
        payload = self.model_dump(mode="json")
        payload["admission_methods"] = admission_method_lists()
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
