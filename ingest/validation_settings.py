"""Settings of the validation gate (``configs/validation.yaml``).

Each kind of check has a severity: ``critical`` stops the run before anything
downstream is written, ``warning`` is reported and the run goes on. Thresholds
turn shares (ethnicity not known, LSOAs not found) and the row-count change
against the previous extract into pass or fail.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from riskstrat.settings import Settings

Severity = Literal["critical", "warning"]


class SeveritySettings(Settings):
    """Severity of each kind of check, generated for every table of the data contract."""

    table_present: Severity = Field("critical", description="Each contract table has a readable file.")
    required_columns: Severity = Field("critical", description="Every required column is in the file.")
    types_parse: Severity = Field(
        "critical", description="Dates are ISO dates and numbers are numbers (checked by the readers)."
    )
    not_null: Severity = Field(
        "critical", description="Required columns that must hold a value are never empty."
    )
    id_unique: Severity = Field(
        "critical", description="person_id in patients, attendance_id and spell_id are unique."
    )
    codes_in_set: Severity = Field("critical", description="Coded columns hold only codes of their code set.")
    text_trimmed: Severity = Field(
        "critical",
        description="No value read from text (IDs, codes, dates, numbers) has leading or trailing "
        "whitespace, ASCII or Unicode (tab, no-break, zero-width or ideographic space); values are "
        "compared and parsed exactly, never trimmed.",
    )
    text_printable: Severity = Field(
        "critical",
        description="IDs hold printable ASCII only; other text columns (codes, names) hold no "
        "control, format (zero-width, direction override), separator or non-plain space characters.",
    )
    id_not_nhs_number: Severity = Field(
        "critical",
        description="ID columns are not NHS numbers: at most thresholds.nhs_number_share of their "
        "ten-digit values carry a valid NHS number check digit.",
    )
    condition_in_vocabulary: Severity = Field(
        "warning",
        description="gp_diagnoses.condition is in the condition vocabulary "
        "(unknown ones are ignored by features).",
    )
    date_not_after_extract_date: Severity = Field(
        "critical", description="No date is later than the extract date."
    )
    date_not_before_min_date: Severity = Field(
        "critical", description="No date is earlier than thresholds.min_date (1900-01-01)."
    )
    age_plausible: Severity = Field(
        "critical", description="Birth dates give ages from 0 to thresholds.max_age at the extract date."
    )
    date_order: Severity = Field(
        "critical",
        description="Discharge not before admission, departure not before arrival, end not before start.",
    )
    not_after_death: Severity = Field(
        "critical",
        description="No event is dated after the person's recorded death (the death date itself is allowed).",
    )
    not_before_birth: Severity = Field(
        "critical", description="No event is dated before the person's birth month."
    )
    death_not_before_birth: Severity = Field(
        "critical",
        description="patients.date_of_death is not before the birth month (placeholders such as 1900-01-01).",
    )
    person_in_patients: Severity = Field("critical", description="Every event's person_id is in patients.")
    lsoa_well_formed: Severity = Field(
        "critical", description="lsoa_code is an English LSOA 2011 code (E01...); Welsh W01 codes fail."
    )
    lsoa_in_imd_lookup: Severity = Field(
        "warning",
        description="Share of patients whose LSOA is not in the IMD 2019 lookup "
        "is at most thresholds.lsoa_not_found_share.",
    )
    lsoa_in_imd_lookup_high: Severity = Field(
        "critical",
        description="Share of LSOAs not in the IMD lookup is at most thresholds.lsoa_not_found_share_high.",
    )
    ethnicity_known: Severity = Field(
        "warning",
        description="Share of ethnic category not known (empty, Z, 99) "
        "is at most thresholds.ethnicity_not_known_share.",
    )
    row_count_change: Severity = Field(
        "warning",
        description="Row count is within thresholds.row_count_change of the last accepted extract "
        "of the same extract folder (baselines are kept per folder).",
    )
    patients_not_empty: Severity = Field("critical", description="patients has at least one row.")
    events_not_empty: Severity = Field("warning", description="Each event table has at least one row.")
    social_care_returns: Severity = Field(
        "warning",
        description="Every expected local authority's CLD return is in social_care_events for every quarter "
        "due by the extract date (60 days after the quarter ends); one result per missing LA-quarter.",
    )


class ThresholdSettings(Settings):
    """Limits that turn shares and counts into pass or fail."""

    ethnicity_not_known_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Largest share of patients with ethnic category not known (empty, Z, 99).",
    )
    lsoa_not_found_share: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Largest share of patients whose LSOA is not in the IMD lookup (first level).",
    )
    lsoa_not_found_share_high: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Largest share of LSOAs not found for the second level (lsoa_in_imd_lookup_high).",
    )
    row_count_change: float = Field(
        0.2,
        ge=0,
        description="Largest relative change of a table's row count "
        "against the previous extract (0.2 = 20%).",
    )
    nhs_number_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Largest share of an ID column's ten-digit values with a valid NHS number check "
        "digit (random ten-digit pseudonyms: about 1 in 11; NHS numbers: all).",
    )
    min_date: date = Field(date(1900, 1, 1), description="No date may be earlier than this.")
    max_age: int = Field(115, ge=1, le=150, description="Oldest plausible age in years at the extract date.")


class CoverageThreshold(Settings):
    """The coverage limits of one coded field (either may be left to the default)."""

    warning_below: float | None = Field(
        None, ge=0, le=1, description="Warn when the share mapped is below this (empty: the default)."
    )
    critical_below: float | None = Field(
        None, ge=0, le=1, description="Stop the run when the share mapped is below this (empty: the default)."
    )


_FIELD_KEY = r"^[a-z0-9_]+\.[A-Za-z0-9_]+$"


class MappingCoverageSettings(Settings):
    """Limits on the share of each coded field the shipped code lists recognise.

    Read from ``mapping_coverage.json``, which ``riskstrat adapt`` writes beside the
    contract tables; an extract supplied in the contract format has none, and these
    checks are then skipped.
    """

    warning_below: float = Field(
        0.99, ge=0, le=1, description="Warn when a field's share of rows mapped is below this."
    )
    critical_below: float = Field(
        0.90,
        ge=0,
        le=1,
        description="Stop the run when a field's share of rows mapped is below this (at most warning_below).",
    )
    fields: dict[str, CoverageThreshold] = Field(
        default_factory=lambda: {
            "ecds.EC_Acuity_SNOMED_CT": CoverageThreshold(critical_below=0.95),
            "gp_events.CODE": CoverageThreshold(warning_below=0.2, critical_below=0.05),
        },
        description="Per-field limits keyed <source>.<national field>: ECDS acuity is critical below 0.95; GP "
        "coded events (mostly not conditions in a full GP journal) warn below 0.2 and stop below 0.05. "
        "A field not listed uses warning_below and critical_below.",
    )
    wrong_system: Severity = Field(
        "warning",
        description="Severity when a coded field holds codes of another coding system "
        "(Read v2 / CTV3 in a SNOMED CT field, OPCS-4 among ICD-10 diagnoses).",
    )

    def limits(self, source: str, field: str) -> tuple[float, float]:
        """The (warning_below, critical_below) limits of ``source.field``."""
        override = self.fields.get(f"{source}.{field}", CoverageThreshold())
        warning = self.warning_below if override.warning_below is None else override.warning_below
        critical = self.critical_below if override.critical_below is None else override.critical_below
        return max(warning, critical), critical

    @model_validator(mode="after")
    def _levels_in_order(self) -> MappingCoverageSettings:
        import re

        if self.critical_below > self.warning_below:
            raise ValueError("mapping_coverage.critical_below must be at most mapping_coverage.warning_below")
        from riskstrat.ingest.sources import SOURCES

        bad = [key for key in self.fields if not re.match(_FIELD_KEY, key)]
        if bad:
            raise ValueError(
                f"mapping_coverage.fields: {', '.join(bad)} is not <source>.<field> (e.g. ecds.EC_Acuity_SNOMED_CT)"
            )
        for key in self.fields:
            source, field = key.split(".", 1)
            if source in SOURCES and field not in SOURCES[source].field_names:
                raise ValueError(
                    f"mapping_coverage.fields: {field} is not a field of {SOURCES[source].title}; "
                    f"fields: {', '.join(SOURCES[source].field_names)}"
                )
        return self


class ValidationSettings(Settings):
    """The validation gate's settings (``configs/validation.yaml``)."""

    severity: SeveritySettings = Field(
        default_factory=SeveritySettings, description="critical or warning for each kind of check."
    )
    thresholds: ThresholdSettings = Field(
        default_factory=ThresholdSettings, description="Limits for shares, row-count changes, dates and ages."
    )
    mapping_coverage: MappingCoverageSettings = Field(
        default_factory=MappingCoverageSettings,
        description="Limits on the share of each coded field of the raw national files the code lists recognise.",
    )
    max_examples: int = Field(5, ge=0, le=5, description="Example IDs shown per failed check (at most five).")
    chunk_size: int = Field(
        8_000_000,
        ge=1,
        description="Rows per chunk: each table is streamed from its file this many rows at a time "
        "(at most two chunks in memory) and each chunk is one Great Expectations batch; counts and "
        "examples are summed across chunks. Each batch has a fixed set-up cost, so larger chunks are "
        "faster on large extracts and use more memory (about 1.4 GiB more at 8,000,000 than 2,000,000).",
    )

    @model_validator(mode="after")
    def _lsoa_levels_in_order(self) -> ValidationSettings:
        if self.thresholds.lsoa_not_found_share_high < self.thresholds.lsoa_not_found_share:
            raise ValueError(
                "thresholds.lsoa_not_found_share_high must be at least thresholds.lsoa_not_found_share"
            )
        return self
