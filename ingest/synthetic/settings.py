"""Settings of the synthetic population (``configs/synthetic.yaml``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from riskstrat.ingest.reference import CENSUS_GROUPS, ENGLAND_ETHNICITY_2021, NOT_KNOWN_GROUP
from riskstrat.settings import Settings

BLACK_COUNTRY: tuple[str, ...] = ("E08000027", "E08000028", "E08000030", "E08000031")
"""Dudley, Sandwell, Walsall and Wolverhampton."""

KNOWN_GROUPS: tuple[str, ...] = tuple(g for g in CENSUS_GROUPS if g != NOT_KNOWN_GROUP)

# Approximate Census 2021 high-level ethnic group shares (TS021), rounded.
DEFAULT_ETHNIC_MIX: dict[str, dict[str, float]] = {
    "E08000027": {"Asian": 0.078, "Black": 0.018, "Mixed": 0.026, "White": 0.866, "Other": 0.012},
    "E08000028": {"Asian": 0.257, "Black": 0.085, "Mixed": 0.041, "White": 0.579, "Other": 0.038},
    "E08000030": {"Asian": 0.186, "Black": 0.038, "Mixed": 0.035, "White": 0.719, "Other": 0.022},
    "E08000031": {"Asian": 0.221, "Black": 0.092, "Mixed": 0.053, "White": 0.593, "Other": 0.041},
    "default": ENGLAND_ETHNICITY_2021,
}

DEFAULT_NOT_RECORDED: dict[str, float] = {
    "White": 0.08,
    "Asian": 0.11,
    "Black": 0.15,
    "Mixed": 0.18,
    "Other": 0.22,
}


class GroupChoice(Settings):
    """A group of people a scenario applies to."""

    enabled: bool = Field(False, description="Whether the scenario is switched on (off by default).")
    group_column: Literal["ethnic_group", "imd_quintile"] = Field(
        "ethnic_group",
        description="Which attribute defines the group: the true 2021-census ethnic group or the IMD quintile.",
    )
    group_value: str = Field(
        "Black",
        description="The group's value: a census group (Asian, Black, Mixed, White, Other) or a quintile 1-5.",
    )

    @model_validator(mode="after")
    def _check_value(self) -> GroupChoice:
        allowed = KNOWN_GROUPS if self.group_column == "ethnic_group" else ("1", "2", "3", "4", "5")
        if self.group_value not in allowed:
            raise ValueError(f"group_value {self.group_value!r} must be one of {', '.join(allowed)}")
        return self


class UnderRecording(GroupChoice):
    """Scenario: a group's GP care is under-recorded in the extract; health itself is unchanged."""

    share_not_recorded: float = Field(
        0.4, ge=0.0, le=1.0, description="Share of the group's diagnoses that never reach the GP record."
    )
    gp_activity_not_recorded: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of the group's GP appointments and repeat prescriptions that never reach the "
        "extract (e.g. care recorded elsewhere or lost in a record migration).",
    )
    start_date: date | None = Field(
        None,
        description="First day of the gap: diagnoses first recorded, appointments held and prescriptions "
        "issued from this day on are affected, earlier ones are not (empty: the whole history). A gap "
        "that starts after the model's training as-of dates is one the model cannot have learned; one "
        "present throughout its training data the model largely corrects for.",
    )


class AccessBarrier(GroupChoice):
    """Scenario: a group gets fewer GP appointments and goes to A&E instead."""

    gp_appointment_reduction: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of the group's GP appointments lost to the barrier."
    )
    ae_substitution: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Low-acuity A&E attendances (type 01/03) made per lost GP appointment.",
    )


class CaptureLoss(Settings):
    """Scenario: part of one local authority's hospital activity never reaches the extract.

    As when its residents are admitted to a trust outside the area whose activity is not
    in the ICB's feed: the care happened (health, the truth and community care are
    unchanged), the extract lost it. The local authority is the one people live in (their
    LSOA's district), as the audit's local-authority grouping reads it.
    """

    enabled: bool = Field(False, description="Whether the scenario is switched on (off by default).")
    lad_code: str = Field(
        "E08000027",
        description="Local authority district (LAD 2019 code) whose residents' activity goes missing; "
        "one of lad_codes. Default Dudley.",
    )
    emergency_admissions_lost: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="Share of the residents' emergency admissions (spells) missing from the extract.",
    )
    ae_attendances_lost: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of the residents' A&E attendances missing from the extract (drawn independently "
        "of the admissions).",
    )
    start_date: date | None = Field(
        None,
        description="First day of the loss: admissions and attendances from this day on are affected, "
        "earlier ones are not (empty: the whole history). Set it after the model's training as-of dates "
        "for a loss the model has not learned.",
    )

    @field_validator("lad_code")
    @classmethod
    def _check_lad(cls, value: str) -> str:
        if not (len(value) == 9 and value[0] == "E" and value[1:].isdigit()):
            raise ValueError(f"a LAD 2019 code looks like E08000027; found {value!r}")
        return value


class SyntheticSettings(Settings):
    """How the synthetic population is drawn (``configs/synthetic.yaml``)."""

    people: int = Field(
        250_000,
        ge=100,
        description=(
            "People generated by `riskstrat generate` and `make demo` unless --people is given. 250,000 (a "
            "small ICS place) gives about 200 frequent-attendance events on the test date, enough to compare "
            "models; 50,000 gives about 40."
        ),
    )
    seed: int = Field(42, ge=0, description="Random seed: the same seed gives identical files.")
    lad_codes: tuple[str, ...] = Field(
        BLACK_COUNTRY,
        min_length=1,
        description="Local authority districts (LAD 2019 codes) of the footprint; people live on their LSOAs.",
    )
    history_start: date = Field(date(2021, 1, 1), description="First day of the synthetic history.")
    extract_date: date = Field(date(2025, 12, 31), description="Date the extract is taken; nothing is later.")
    truth_as_of: tuple[date, ...] = Field(
        (date(2022, 12, 31), date(2023, 6, 30), date(2023, 12, 31), date(2024, 12, 31), date(2025, 12, 31)),
        min_length=1,
        description="As-of dates for which truth/risk.parquet holds each person's true probabilities.",
    )
    mean_list_size: int = Field(
        7000,
        ge=2000,
        le=25000,
        description="Mean GP practice list size at full scale (lists are 2,000-25,000).",
    )
    neighbourhood_size: int = Field(
        40000,
        ge=5000,
        description="Target people per neighbourhood (one MDT each); neighbourhoods stay within a LAD.",
    )
    min_practices_per_lad: int = Field(
        2,
        ge=1,
        description="Fewest practices per district, so small populations still get several practices.",
    )
    ethnic_mix: dict[str, dict[str, float]] = Field(
        default_factory=lambda: dict(DEFAULT_ETHNIC_MIX),
        description="Approximate Census 2021 ethnic group shares by LAD code; 'default' covers other LADs.",
    )
    ethnicity_not_recorded: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_NOT_RECORDED),
        description="Share of each true group whose ethnic category is missing, Z or 99 in the GP record.",
    )
    moved_in_share: float = Field(
        0.12,
        ge=0.0,
        le=0.5,
        description="Share of people (other than babies) who register during the history.",
    )
    moved_out_share: float = Field(
        0.10,
        ge=0.0,
        le=0.5,
        description="Share of people who leave the area (registration ends) during the history.",
    )
    type1_opt_out_share: float = Field(
        0.03, ge=0.0, le=0.2, description="Share of people with a type 1 opt-out."
    )
    ndo_opt_out_share: float = Field(
        0.02, ge=0.0, le=0.2, description="Share of people with a national data opt-out."
    )
    caseload_share_of_frail: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of frail people (moderate or severe latent frailty) on the current proactive-care caseload.",
    )
    chunk_size: int = Field(
        100_000,
        ge=1000,
        description="People generated at a time (bounds memory); results depend on it, so keep it fixed.",
    )
    write_national: bool = Field(
        True,
        description=(
            "The demo writes raw national files (SUS+ APC, ECDS, CSDS, GP) to raw/ and reads them through "
            "the source adapters, so every code mapping runs on every demo; false: the demo writes contract "
            "tables to extract/. `riskstrat generate` writes contract tables unless given --national."
        ),
    )
    under_recording: UnderRecording = Field(
        default_factory=UnderRecording, description="Scenario: under-recorded diagnoses for one group."
    )
    access_barrier: AccessBarrier = Field(
        default_factory=AccessBarrier, description="Scenario: a group uses A&E instead of its GP."
    )
    capture_loss: CaptureLoss = Field(
        default_factory=CaptureLoss,
        description="Scenario: part of one local authority's emergency admissions missing from the extract.",
    )

    @field_validator("lad_codes")
    @classmethod
    def _check_lads(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [code for code in value if not (len(code) == 9 and code[0] == "E" and code[1:].isdigit())]
        if bad:
            raise ValueError(f"LAD codes look like E08000027; found {', '.join(bad)}")
        return value

    @field_validator("ethnic_mix")
    @classmethod
    def _check_mix(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        if "default" not in value:
            raise ValueError("needs a 'default' entry for districts not listed")
        for lad, shares in value.items():
            if set(shares) != set(KNOWN_GROUPS):
                raise ValueError(f"{lad}: give a share for each of {', '.join(KNOWN_GROUPS)}")
            if any(s < 0 for s in shares.values()) or abs(sum(shares.values()) - 1) > 0.01:
                raise ValueError(f"{lad}: shares must be non-negative and add up to 1")
        return value

    @field_validator("ethnicity_not_recorded")
    @classmethod
    def _check_not_recorded(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(KNOWN_GROUPS) or any(not 0 <= s <= 1 for s in value.values()):
            raise ValueError(f"give a share between 0 and 1 for each of {', '.join(KNOWN_GROUPS)}")
        return value

    @model_validator(mode="after")
    def _check_dates(self) -> SyntheticSettings:
        if self.extract_date <= self.history_start:
            raise ValueError("extract_date must be after history_start")
        for as_of in self.truth_as_of:
            if not self.history_start < as_of <= self.extract_date:
                raise ValueError(f"truth_as_of {as_of} must lie between history_start and extract_date")
        return self

    @model_validator(mode="after")
    def _check_capture_loss(self) -> SyntheticSettings:
        scenario = self.capture_loss
        if scenario.enabled and scenario.lad_code not in self.lad_codes:
            raise ValueError(
                f"capture_loss.lad_code {scenario.lad_code} is not one of lad_codes ({', '.join(self.lad_codes)})"
            )
        return self
