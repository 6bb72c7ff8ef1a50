"""Settings of the synthetic population (``configs/synthetic.yaml``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from riskstrat.ingest.reference import CENSUS_GROUPS, ENGLAND_ETHNICITY_2021, NOT_KNOWN_GROUP, conditions
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


MONITORING_SCENARIO_START = date(2025, 9, 1)
"""Default start of the monitoring scenarios: a few months before the default extract date."""

FEED_TABLES: tuple[str, ...] = (
    "gp_diagnoses",
    "gp_appointments",
    "gp_medications",
    "community_contacts",
    "ae_attendances",
    "apc_spells",
)
"""Event tables a feed stop can hit."""


class FeedStop(Settings):
    """Scenario: one practice's GP feed stops reaching the extract from a date.

    Rows of the practice's registered people dated on or after ``start_date`` are missing
    from the chosen tables; the care happened (health and the truth are unchanged).
    """

    enabled: bool = Field(False, description="Whether the scenario is switched on (off by default).")
    practice_code: str | None = Field(
        None,
        description="The practice whose feed stops (empty: the practice with the most registered people, "
        "so it works for any seed and size).",
    )
    tables: tuple[str, ...] = Field(
        ("gp_appointments", "gp_medications"),
        min_length=1,
        description="Contract tables whose rows stop: any of gp_diagnoses, gp_appointments, gp_medications, "
        "community_contacts, ae_attendances, apc_spells.",
    )
    start_date: date = Field(
        MONITORING_SCENARIO_START, description="First day missing: rows dated from this day on are lost."
    )

    @field_validator("tables")
    @classmethod
    def _check_tables(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if name not in FEED_TABLES]
        if bad:
            raise ValueError(f"unknown table {', '.join(bad)}; choose from {', '.join(FEED_TABLES)}")
        return value


class CodingChange(Settings):
    """Scenario: after a coding change, a share of one condition's new GP diagnosis records is lost.

    As when a practice system or code list changes and some new codes no longer map to the
    condition: records of ``condition`` in gp_diagnoses dated on or after ``start_date`` are
    dropped with probability ``share_lost``. Health and the truth are unchanged.
    """

    enabled: bool = Field(False, description="Whether the scenario is switched on (off by default).")
    condition: str = Field(
        "recorded_efi",
        description="The condition (a name in ingest/reference/conditions.csv) whose new records drop. "
        "Default recorded_efi, the GP record's most frequent code (eFI scores, about 380 a week at 250,000 "
        "people: as when practices move from eFI to eFI2 codes); hypertension has about 25 a week.",
    )
    share_lost: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of its records dated from start_date lost."
    )
    start_date: date = Field(
        MONITORING_SCENARIO_START,
        description="First day of the change: records dated from this day on are hit.",
    )

    @field_validator("condition")
    @classmethod
    def _check_condition(cls, value: str) -> str:
        known = conditions()["condition"].tolist()
        if value not in known:
            raise ValueError(
                f"unknown condition {value!r}; see ingest/reference/conditions.csv (e.g. hypertension)"
            )
        return value


class NewResidents(Settings):
    """Scenario: extra people register over a few weeks (a new housing estate joins, or the population ages).

    ``share`` of the population (on top of ``people``) moves into one district's LSOAs and
    registers between ``start_date`` and ``start_date + arrival_weeks`` weeks, aged
    ``age_min``-``age_max`` on arrival. They are generated like everyone else (health, events,
    records before arrival that follow them) but their registration starts in the window.
    An older band (70-95, the default) shifts the age mix, as an ageing population does;
    a young-family band (e.g. 0-40) models a new housing estate.
    """

    enabled: bool = Field(False, description="Whether the scenario is switched on (off by default).")
    share: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="Extra people, as a share of the population (`people`). 0.2 of them aged 70-95 moves the "
        "age mix by a population stability index of about 0.27 (a major shift); 0.06 by about 0.04.",
    )
    start_date: date = Field(MONITORING_SCENARIO_START, description="First day the new residents register.")
    arrival_weeks: int = Field(8, ge=1, le=104, description="Weeks over which they register (uniformly).")
    age_min: int = Field(70, ge=0, le=105, description="Youngest age on arrival (years).")
    age_max: int = Field(95, ge=0, le=105, description="Oldest age on arrival (years).")
    lad_code: str | None = Field(
        None,
        description="District (LAD 2019 code, one of lad_codes) whose LSOAs they live in; empty: the "
        "first of lad_codes.",
    )

    @model_validator(mode="after")
    def _check_ages(self) -> NewResidents:
        if self.age_min > self.age_max:
            raise ValueError(f"age_min ({self.age_min}) must not be above age_max ({self.age_max})")
        return self


QUARTER_START_MONTHS = (1, 4, 7, 10)
"""Months a quarterly social care return's period starts in."""


class MissingReturn(Settings):
    """One local authority's quarterly social care return that never reached the ICB."""

    la_code: str = Field(
        description="Local authority (LAD 2019 code, one of lad_codes) whose return is missing."
    )
    quarter: date = Field(
        description="First day of the quarter whose return is missing (1 Jan, Apr, Jul or Oct)."
    )

    @field_validator("quarter")
    @classmethod
    def _check_quarter(cls, value: date) -> date:
        if value.day != 1 or value.month not in QUARTER_START_MONTHS:
            raise ValueError(f"a quarter starts on 1 January, April, July or October; found {value}")
        return value


class SocialCare(Settings):
    """Adult social care (CLD) in the synthetic population (``ingest/synthetic/social_care.py``).

    Drawn from the same latent health as every other table, from a random stream of its own:
    long-term support when a person's need (latent frailty, age, dementia, a decline episode)
    passes their eligibility threshold, care-home placements at the latent care-home move,
    reablement after emergency discharges, requests and assessments after falls, admissions
    and decline episodes, yearly reviews and carers. Written as the adapter leaves the
    quarterly returns: each event in the latest received return it was active in.
    """

    enabled: bool = Field(
        True,
        description="Generate social_care_events (on by default, so the demo exercises the social care "
        "source); false: no social care table, and every other table is exactly as with it.",
    )
    first_quarter: date | None = Field(
        None,
        description="First quarter with returns (1 Jan, Apr, Jul or Oct); empty: the quarter of "
        "history_start, so the models' training as-of dates have a year of returns. The real CLD "
        "began in April 2023 (2023-04-01).",
    )
    need_threshold: float = Field(
        0.44,
        ge=0.0,
        le=2.0,
        description="Mean eligibility threshold of the need score (latent frailty index, plus 0.01 a year "
        "of age over 75, 0.15 with dementia, 0.08 in a decline episode): long-term support at home starts "
        "in the first month an adult's need passes their threshold. 0.44 puts about 5% of people aged 65+ "
        "on long-term support (3.4% at home, 2% in care homes) and 0.6% of those aged 18-64.",
    )
    need_threshold_sd: float = Field(
        0.08, ge=0.0, le=1.0, description="SD of each person's eligibility threshold around need_threshold."
    )
    funded_share: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="Share of eligible people whose support at home the local authority arranges (the rest "
        "fund or arrange their own, and are not in the returns).",
    )
    placement_funded_share: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Share of care-home moves that are local-authority placements (the rest are self-funders).",
    )
    nursing_share: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="Share of placements with nursing (long_term_nursing), doubled for severe frailty.",
    )
    direct_payment_share: float = Field(
        0.2, ge=0.0, le=1.0, description="Share of support at home taken as a direct payment."
    )
    support_end_rate: float = Field(
        0.08,
        ge=0.0,
        le=2.0,
        description="Yearly rate at which support at home ends for reasons other than death, leaving or a "
        "care-home move.",
    )
    learning_disability_share: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Share of adults with a learning disability receiving long-term support (supported living, "
        "home care or day care).",
    )
    mental_health_share: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Share of adults with a serious mental illness receiving long-term support.",
    )
    reablement_share: float = Field(
        0.08,
        ge=0.0,
        le=1.0,
        description="Chance of short-term reablement (ST-Max) after an emergency discharge of a person aged "
        "65+ with no latent frailty; it rises with frailty (x(1 + 4 x frailty index)) and is 1.5 times higher "
        "in a decline episode (at most 0.8).",
    )
    reablement_start_days: int = Field(
        7, ge=0, le=60, description="Reablement starts within this many days of the discharge."
    )
    reablement_days: tuple[int, int] = Field(
        (14, 42), description="Shortest and longest reablement, in days (ST-Max lasts up to six weeks)."
    )
    request_after_admission_share: float = Field(
        0.12,
        ge=0.0,
        le=1.0,
        description="Chance of a request for support within four weeks of an emergency discharge at 65+ "
        "(x(1 + 2 x frailty index)).",
    )
    request_after_fall_share: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Chance of a request within six weeks of the onset of falls or a fragility fracture at 65+.",
    )
    request_in_decline_share: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Chance of a request in the first 45 days of a decline episode at 65+ (a marker of the "
        "episode, which triples the emergency risk while it lasts).",
    )
    assessment_share: float = Field(
        0.7, ge=0.0, le=1.0, description="Share of requests followed by an assessment (1-4 weeks later)."
    )
    carer_share: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Share of people on long-term support at home with a carer known to the local authority "
        "(another registered adult of the same LSOA, or failing that the same district), who has carer's "
        "assessments, support and reviews of their own.",
    )
    missing_returns: tuple[MissingReturn, ...] = Field(
        (MissingReturn(la_code="E08000030", quarter=date(2025, 4, 1)),),
        description="Quarterly returns that never arrived (rows only in them are lost; longer events appear "
        "in the next return). Default: Walsall's April-June 2025 return.",
    )
    late_las: tuple[str, ...] = Field(
        (),
        description="Local authorities whose latest due return has not arrived by the extract date (open "
        "events show as they were in the return before; their people's social care is not known at the "
        "extract date). Default: none, so the demo's lists show social care context for every LA.",
    )

    @field_validator("first_quarter")
    @classmethod
    def _check_first_quarter(cls, value: date | None) -> date | None:
        if value is not None and (value.day != 1 or value.month not in QUARTER_START_MONTHS):
            raise ValueError(f"a quarter starts on 1 January, April, July or October; found {value}")
        return value

    @model_validator(mode="after")
    def _check_days(self) -> SocialCare:
        low, high = self.reablement_days
        if not 1 <= low <= high:
            raise ValueError(f"reablement_days {self.reablement_days}: give shortest <= longest, both >= 1")
        return self


def default_end_week(extract_date: date) -> date:
    """The simulated deployment's last week by default: the Monday of the week before ``extract_date``'s week.

    The demo publishes its own two weeks straight after it (``pipelines/demo.py`` ``demo_weeks``: the
    weeks of the extract date and the one after), so the list history has no gap.
    """
    return extract_date - timedelta(days=extract_date.weekday() + 7)


class Deployment(Settings):
    """A simulated past deployment: weekly lists at each MDT's capacity, enrolment, and its effect.

    One MDT per neighbourhood ranks its registered adults each week by a noisy score of
    their true rate of emergency admission or death and lists the top ``capacity_people``; a share of
    listed people is enrolled (a proactive-care caseload) for ``enrolment_weeks``, and while
    enrolled their emergency admission hazard is cut by ``admission_effect``. The truth
    records it, so impact estimators can be checked (``ingest/synthetic/deployment.py``).
    """

    enabled: bool = Field(
        True,
        description="Simulate the deployment (on by default, with no effect, so every demo has a year of "
        "list history for the impact evaluation and the monitoring page).",
    )
    start_week: date = Field(date(2025, 1, 6), description="First week (a Monday) with simulated lists.")
    end_week: date | None = Field(
        None,
        description="Last week (a Monday) with simulated lists; empty: the Monday of the week before "
        "extract_date's week, so the demo's own two weeks follow it without a gap.",
    )
    capacity_people: int = Field(50, ge=1, description="Places on each MDT's weekly list.")
    min_age: int = Field(
        18, ge=0, le=120, description="Youngest age listed, in whole years at the data date."
    )
    enrolment_share: float = Field(
        0.25, ge=0.0, le=1.0, description="Chance that a listed person is enrolled (taken onto the caseload)."
    )
    enrolment_weeks: int = Field(
        12,
        ge=1,
        le=104,
        description="Weeks an enrolment lasts; an enrolled person is off the lists of the next enrolment_weeks weeks.",
    )
    admission_effect: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="The true effect: the share by which enrolment cuts the emergency admission hazard while "
        "enrolled (0.2 = 20% fewer emergency admissions; 0 = no effect).",
    )
    score_noise: float = Field(
        0.3,
        ge=0.0,
        le=3.0,
        description="SD of the lognormal error multiplying each person's true rate in the deployment's score "
        "(a model's error; 0 = ranked by the true rate).",
    )
    people_below: int = Field(
        50, ge=0, le=10_000, description="Eligible people just below each cut-off kept in the cut-off record."
    )
    lottery_places: int = Field(
        0, ge=0, description="Last places of each list filled by a seeded draw (0 = no lottery)."
    )
    lottery_pool: int = Field(
        10, ge=2, description="People (from rank capacity-lottery_places+1 down) in each draw."
    )
    scores_every_weeks: int = Field(
        4, ge=1, description="The whole population's scores are stored every this many simulated weeks."
    )
    truth_horizon_days: int = Field(
        90,
        ge=1,
        le=365,
        description="Window after each data date of the truth's probabilities (truth/deployment.parquet).",
    )

    @model_validator(mode="after")
    def _check(self) -> Deployment:
        for name in ("start_week", "end_week"):
            value = getattr(self, name)
            if value is not None and value.weekday() != 0:
                raise ValueError(f"{name} {value} is a {value.strftime('%A')}; give a Monday")
        if self.lottery_places and self.lottery_places > self.capacity_people:
            raise ValueError(
                f"lottery_places ({self.lottery_places}) is more than capacity_people ({self.capacity_people})"
            )
        if self.lottery_places and self.lottery_pool <= self.lottery_places:
            raise ValueError(
                f"lottery_pool ({self.lottery_pool}) must be larger than lottery_places ({self.lottery_places})"
            )
        return self

    def last_week(self, extract_date: date) -> date:
        """The last simulated week: ``end_week``, or :func:`default_end_week` of ``extract_date``."""
        return self.end_week or default_end_week(extract_date)


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
    feed_stop: FeedStop = Field(
        default_factory=FeedStop,
        description="Monitoring scenario: one practice's GP appointments and prescriptions stop reaching the extract.",
    )
    coding_change: CodingChange = Field(
        default_factory=CodingChange,
        description="Monitoring scenario: a share of one condition's new GP diagnosis records lost after a coding change.",
    )
    new_residents: NewResidents = Field(
        default_factory=NewResidents,
        description="Monitoring scenario: extra people (older, by default) register in one district over a few weeks.",
    )

    social_care: SocialCare = Field(
        default_factory=SocialCare,
        description="Adult social care (the CLD returns' events) from the same latent health; on by default.",
    )

    deployment: Deployment = Field(
        default_factory=Deployment,
        description="A simulated past deployment (weekly lists, enrolment, a true effect) for the impact "
        "evaluation and monitoring; on by default with no effect.",
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

    @model_validator(mode="after")
    def _check_monitoring_scenarios(self) -> SyntheticSettings:
        for name in ("feed_stop", "coding_change", "new_residents"):
            scenario = getattr(self, name)
            if scenario.enabled and not self.history_start < scenario.start_date <= self.extract_date:
                raise ValueError(
                    f"{name}.start_date {scenario.start_date} must lie between history_start and extract_date"
                )
        lad = self.new_residents.lad_code
        if self.new_residents.enabled and lad is not None and lad not in self.lad_codes:
            raise ValueError(
                f"new_residents.lad_code {lad} is not one of lad_codes ({', '.join(self.lad_codes)})"
            )
        return self

    @model_validator(mode="after")
    def _check_social_care(self) -> SyntheticSettings:
        care = self.social_care
        if not care.enabled:
            return self
        named = [r.la_code for r in care.missing_returns] + list(care.late_las)
        unknown = sorted({code for code in named if code not in self.lad_codes})
        if unknown:
            raise ValueError(
                f"social_care: local authority {', '.join(unknown)} is not one of lad_codes "
                f"({', '.join(self.lad_codes)}); name districts of the footprint in social_care.missing_returns "
                "and social_care.late_las, or set them to []"
            )
        if care.first_quarter is not None and not care.first_quarter <= self.extract_date:
            raise ValueError(f"social_care.first_quarter {care.first_quarter} is after extract_date")
        return self

    @model_validator(mode="after")
    def _check_deployment(self) -> SyntheticSettings:
        deployment = self.deployment
        if not deployment.enabled:
            return self
        last = deployment.last_week(self.extract_date)
        if deployment.start_week > last:
            raise ValueError(
                f"deployment.start_week {deployment.start_week} is after its last week {last} (end_week, or the "
                f"Monday of the week before extract_date {self.extract_date}); set an earlier "
                "start_week or deployment.enabled: false"
            )
        if deployment.start_week - timedelta(days=1) <= self.history_start:
            raise ValueError(f"deployment.start_week {deployment.start_week} must be after history_start")
        if last > default_end_week(self.extract_date):
            raise ValueError(
                f"deployment.end_week {last} must be before the week of extract_date {self.extract_date} "
                f"(at the latest {default_end_week(self.extract_date)}), so the demo's own weeks come after "
                "the simulated ones"
            )
        return self
