"""The feature dictionary: what every feature means, and how to say it to an MDT.

Each feature has a name, a plain-English label, a unit, the source table, its
window (days, or None), a ``concept`` shared by every window of the same thing
(so a worklist gives "A&E attendances" once, not once per window) and a reason
template filled with the person's value. ``docs/features.md`` is generated from
this module by :func:`render_feature_docs` (``riskstrat docs --out docs`` writes it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from riskstrat.features import social_care
from riskstrat.features.community import COMMUNITY_FEATURE_SERVICES
from riskstrat.features.demographics import ethnicity_feature_name
from riskstrat.features.hospital import HFRS_BANDS, hfrs_band
from riskstrat.features.primary import EFI_CATEGORIES, EFI_CUT_OFFS
from riskstrat.features.settings import FeatureSettings
from riskstrat.ingest.reference import CENSUS_GROUPS, conditions, long_term_conditions

Group = str


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the matrix.

    Attributes:
        name: Column name in the feature matrix.
        label: Plain-English label.
        unit: Unit of the value (count, days, years, flag, score, decile, ...).
        source: Contract table(s) it is computed from.
        window: Look-back window in days, or None.
        concept: Key shared by every window of the same thing (e.g. ``ae_attendances``).
        group: demographics, primary, community, acute or social care.
        reason: Template of the reason text; fields ``{value}``, ``{noun}``, ``{window}``,
            ``{category}``.
        reason_absent: Text when a flag is 0 (flags only).
        noun: Singular and plural noun for counts ("emergency admission", "emergency admissions").
        missing: What a person with no record gets: "zero" or "null" (NaN; LightGBM handles it).
        description: How it is computed, for docs/features.md.
    """

    name: str
    label: str
    unit: str
    source: str
    window: int | None
    concept: str
    group: Group
    reason: str
    reason_absent: str = ""
    noun: tuple[str, str] | None = None
    missing: str = "zero"
    description: str = ""


def window_words(days: int) -> str:
    """A window in words: 30 -> "30 days", 90 -> "3 months", 365 -> "12 months", 730 -> "2 years"."""
    if days % 365 == 0:
        years = days // 365
        return "12 months" if years == 1 else f"{years} years"
    if days > 31 and days % 30 == 0:
        return f"{days // 30} months"
    if days % 7 == 0 and days > 7 and days < 30:
        return f"{days // 7} weeks"
    return "1 day" if days == 1 else f"{days} days"


@dataclass(frozen=True)
class _Family:
    stem: str
    label: str
    source: str
    noun: tuple[str, str]
    description: str
    group: Group
    unit: str = "count"
    reason: str = "{value:.0f} {noun} in the last {window}"


def _windowed_families(settings: FeatureSettings) -> list[_Family]:
    readmission = f"readmissions_{settings.readmission_days}d"
    services = {
        "district_nursing": "district nursing",
        "community_matron": "community matron",
        "urgent_community_response": "urgent community response",
        "falls": "falls service",
        "intermediate_care": "intermediate care",
        "palliative": "palliative care",
    }
    assert set(services) == set(COMMUNITY_FEATURE_SERVICES)
    return [
        _Family(
            "gp_appointments",
            "GP appointments",
            "gp_appointments",
            ("GP appointment", "GP appointments"),
            "Appointments not recorded as did-not-attend (missing status counts as attended).",
            "primary",
        ),
        _Family(
            "gp_home_visits",
            "GP home visits",
            "gp_appointments",
            ("GP home visit", "GP home visits"),
            "Attended appointments with mode home_visit.",
            "primary",
        ),
        _Family(
            "gp_dna",
            "Missed GP appointments",
            "gp_appointments",
            ("missed GP appointment", "missed GP appointments"),
            "Appointments with status dna (did not attend).",
            "primary",
        ),
        *[
            _Family(
                f"community_{service}",
                f"Community contacts: {words}",
                "community_contacts",
                (f"{words} contact", f"{words} contacts"),
                f"CSDS care contacts with service {service}.",
                "community",
            )
            for service, words in services.items()
        ],
        _Family(
            "community_contacts",
            "Community contacts (all services)",
            "community_contacts",
            ("community care contact", "community care contacts"),
            "CSDS care contacts with any service.",
            "community",
        ),
        _Family(
            "ae_attendances",
            "A&E attendances",
            "ae_attendances",
            ("A&E attendance", "A&E attendances"),
            "ECDS attendances by arrival date.",
            "acute",
        ),
        _Family(
            "ae_ambulance",
            "A&E arrivals by ambulance",
            "ae_attendances",
            ("ambulance arrival at A&E", "ambulance arrivals at A&E"),
            "Attendances with arrival_mode ambulance.",
            "acute",
        ),
        _Family(
            "ae_high_acuity",
            "High-acuity A&E attendances",
            "ae_attendances",
            ("high-acuity A&E attendance", "high-acuity A&E attendances"),
            "Attendances with initial acuity 1 (immediate) or 2 (very urgent).",
            "acute",
        ),
        _Family(
            "ae_admitted",
            "Admissions from A&E",
            "ae_attendances",
            ("admission from A&E", "admissions from A&E"),
            "Attendances with disposal admitted.",
            "acute",
        ),
        _Family(
            "ae_mental_health",
            "A&E attendances for mental health, self-harm or alcohol/drugs",
            "ae_attendances",
            (
                "A&E attendance for mental health, self-harm or alcohol/drugs",
                "A&E attendances for mental health, self-harm or alcohol/drugs",
            ),
            "Attendances whose chief complaint group is mental_health, self_harm or alcohol_drugs "
            "(ECDS chief complaint, mapped); 0 when the extract carries no complaint.",
            "acute",
        ),
        _Family(
            "emergency_admissions",
            "Emergency admissions",
            "apc_spells",
            ("emergency admission", "emergency admissions"),
            "Spells with an emergency admission method (21-25, 2A-2D, 28) admitted in the window.",
            "acute",
        ),
        _Family(
            "elective_admissions",
            "Elective admissions",
            "apc_spells",
            ("planned admission", "planned admissions"),
            "Spells with an elective admission method (11-13) admitted in the window.",
            "acute",
        ),
        _Family(
            "bed_days",
            "Days in hospital",
            "apc_spells",
            ("day in hospital", "days in hospital"),
            "Overlap in days of each stay [admission, discharge] with [T - w, T]; a discharge after "
            "T (or none) counts as still in hospital at T.",
            "acute",
            unit="days",
        ),
        _Family(
            "long_stays",
            f"Hospital stays of {settings.long_stay_min_days} days or more",
            "apc_spells",
            (
                f"hospital stay of {settings.long_stay_min_days} days or more",
                f"hospital stays of {settings.long_stay_min_days} days or more",
            ),
            f"Spells admitted in the window whose length of stay known at T is at least "
            f"{settings.long_stay_min_days} days.",
            "acute",
        ),
        _Family(
            readmission,
            f"Emergency readmissions within {settings.readmission_days} days",
            "apc_spells",
            (
                f"emergency readmission within {settings.readmission_days} days of discharge",
                f"emergency readmissions within {settings.readmission_days} days of discharge",
            ),
            f"Emergency admissions in the window within {settings.readmission_days} days of the "
            "discharge (on or before T) from an earlier spell.",
            "acute",
        ),
    ]


def _condition_labels() -> dict[str, str]:
    table = conditions()
    return dict(zip(table["condition"], table["label"], strict=True))


def _demographic_specs(settings: FeatureSettings) -> list[FeatureSpec]:
    specs = [
        FeatureSpec(
            "age",
            "Age",
            "years",
            "patients",
            None,
            "age",
            "demographics",
            "Aged {value:.0f}",
            description="Age in completed years at T, from birth_date.",
        ),
        FeatureSpec(
            "sex_female",
            "Female",
            "flag",
            "patients",
            None,
            "sex",
            "demographics",
            "Female",
            reason_absent="Not recorded as female",
            description="1 when sex is 2 (female).",
        ),
        FeatureSpec(
            "imd_decile",
            "IMD 2019 decile",
            "decile (1 = most deprived)",
            "patients",
            None,
            "deprivation",
            "demographics",
            "Lives in IMD decile {value:.0f} (1 = most deprived)",
            missing="null",
            description="IMD 2019 decile of the LSOA of residence; empty when the LSOA is not English.",
        ),
        FeatureSpec(
            "imd_quintile",
            "IMD 2019 quintile",
            "quintile (1 = most deprived)",
            "patients",
            None,
            "deprivation",
            "demographics",
            "Lives in IMD quintile {value:.0f} (1 = most deprived 20%)",
            missing="null",
            description="IMD 2019 quintile; 1 is the most deprived 20% (Core20).",
        ),
        FeatureSpec(
            "care_home",
            "Lives in a care home",
            "flag",
            "gp_diagnoses",
            None,
            "care_home",
            "demographics",
            "Lives in a care home",
            reason_absent="Does not live in a care home",
            description="1 when a care_home_resident code is recorded on or before T.",
        ),
    ]
    if settings.include_ethnicity:
        for group in CENSUS_GROUPS:
            specs.append(
                FeatureSpec(
                    ethnicity_feature_name(group),
                    f"Ethnic group: {group}",
                    "flag",
                    "patients",
                    None,
                    "ethnicity",
                    "demographics",
                    f"Ethnic group {group}",
                    reason_absent=f"Ethnic group not {group}",
                    description="One-hot 2021-census ethnic group (only with include_ethnicity: true).",
                )
            )
    return specs


def _lower_first(label: str) -> str:
    """Lower-case a label's first letter unless it is an acronym (COPD) or a name (Parkinson's)."""
    first_word = label.split()[0]
    if first_word.isupper() or first_word.endswith("'s"):
        return label
    return label[0].lower() + label[1:]


def _primary_specs(settings: FeatureSettings) -> list[FeatureSpec]:
    labels = _condition_labels()
    specs = [
        FeatureSpec(
            f"ltc_{name}",
            labels[name],
            "flag",
            "gp_diagnoses",
            None,
            f"ltc_{name}",
            "primary",
            f"Has {_lower_first(labels[name])}",
            reason_absent=f"No {_lower_first(labels[name])} recorded",
            description=f"1 when {name} is recorded on or before T.",
        )
        for name in long_term_conditions()
    ]
    fit, mild, moderate = EFI_CUT_OFFS
    specs += [
        FeatureSpec(
            "ltc_count",
            "Long-term conditions",
            "count",
            "gp_diagnoses",
            None,
            "ltc_count",
            "primary",
            "{value:.0f} {noun}",
            noun=("long-term condition", "long-term conditions"),
            description="Distinct long-term conditions recorded on or before T.",
        ),
        FeatureSpec(
            "new_conditions_365d",
            "New long-term conditions",
            "count",
            "gp_diagnoses",
            365,
            "new_conditions",
            "primary",
            "{value:.0f} {noun} in the last {window}",
            noun=("new long-term condition recorded", "new long-term conditions recorded"),
            description="Long-term conditions first recorded in the 365 days to T.",
        ),
        FeatureSpec(
            "efi_score",
            "Electronic frailty index",
            "score (0-1)",
            "gp_diagnoses, gp_medications",
            None,
            "frailty",
            "primary",
            "{category} (eFI {value:.3f})",
            description=(
                "Distinct eFI deficits recorded on or before T / 36; the polypharmacy deficit counts "
                f"with a polypharmacy code or at least {settings.polypharmacy_min_bnf_sections} distinct "
                "BNF sections issued in the 365 days to T."
            ),
        ),
        FeatureSpec(
            "efi_category",
            "Frailty category",
            "category",
            "gp_diagnoses, gp_medications",
            None,
            "frailty",
            "primary",
            "{category}",
            description=(
                f"0 fit (eFI <= {fit}), 1 mild (<= {mild}), 2 moderate (<= {moderate}), 3 severe (above)."
            ),
        ),
        FeatureSpec(
            "recorded_efi",
            "Recorded eFI score",
            "score (0-1)",
            "gp_diagnoses",
            None,
            "recorded_efi",
            "primary",
            "{category} (recorded eFI {value:.2f})",
            missing="null",
            description=(
                "The latest eFI or eFI2 score the GP record holds (condition recorded_efi, its value) "
                f"dated in the {settings.recorded_efi_days} days to T (the highest of several on that "
                "day); empty (NaN) if none. The category uses the eFI cut-offs."
            ),
        ),
        FeatureSpec(
            "bnf_sections_365d",
            "Medicine groups prescribed",
            "count",
            "gp_medications",
            365,
            "polypharmacy",
            "primary",
            "{value:.0f} {noun} prescribed in the last {window}",
            noun=("medicine group (BNF section)", "medicine groups (BNF sections)"),
            description="Distinct BNF sections (first 4 characters of bnf_code) issued in the 365 days to T.",
        ),
    ]
    return specs


_LONG_TERM_KIND_WORDS = {
    "long_term_residential": "residential care",
    "long_term_nursing": "nursing care",
    "long_term_community": "support at home",
}
"""How each long-term service type reads in a reason."""
_SUPPORT_REASON_WORDS = {
    "physical_personal_care": "personal care (physical support)",
    "physical_access_mobility": "access and mobility (physical support)",
    "sensory": "sensory needs",
    "memory_cognition": "memory and cognition",
    "learning_disability": "a learning disability",
    "mental_health": "mental health",
    "social_support": "social support needs",
}
"""How each primary support reason reads in a reason."""
SOCIAL_CARE_CONCEPT = "social_care"
"""The one concept of every social care feature: a list row gives at most one social care reason (the
feature that raises the risk most), none when the person's social care is not known
(``worklists.reasons.KNOWN_FLAGS``); the row's Social care column gives the whole context."""
_NOT_KNOWN_NOTE = (
    " Empty (NaN) when social_care_known is 0: the local authority's latest return due by T is missing."
)
_AS_OF_RETURN = "the latest social care return"
"""Where a social care feature's windows end: C, the end of the latest quarter whose return is due by T."""


def _social_care_specs() -> list[FeatureSpec]:
    assert set(_LONG_TERM_KIND_WORDS) == set(social_care.LONG_TERM_KINDS)
    assert set(_SUPPORT_REASON_WORDS) == set(social_care.SUPPORT_REASONS)
    source = social_care.SOCIAL_CARE_TABLE
    days = social_care.RECENT_DAYS
    return [
        FeatureSpec(
            social_care.KNOWN,
            "Social care record known",
            "flag",
            source,
            None,
            SOCIAL_CARE_CONCEPT,
            "social care",
            "Social care record known for the last 12 months",
            reason_absent="Social care not known: the local authority's return is missing",
            description=(
                "1 when the person's local authority (that of their LSOA) has its CLD return in the extract "
                "for the latest quarter whose return was due by T (60 days after the quarter ends; a "
                "return covers the 12 months to its quarter's end, so an older missing quarter does not "
                "matter); otherwise 0 and every other social care feature is empty (NaN). Never a reason."
            ),
        ),
        FeatureSpec(
            social_care.LONG_TERM_SUPPORT,
            "Receiving long-term social care support",
            "flag",
            source,
            None,
            SOCIAL_CARE_CONCEPT,
            "social care",
            "Receiving long-term social care support",
            reason_absent="Not receiving long-term social care support",
            missing="null",
            description=(
                "1 when a long-term service (long_term_residential, long_term_nursing or "
                "long_term_community) is open at C (the end of the latest quarter whose return is due "
                "by T): started on or before C, not ended on or before C." + _NOT_KNOWN_NOTE
            ),
        ),
        *[
            FeatureSpec(
                name,
                f"Receiving long-term social care support: {_LONG_TERM_KIND_WORDS[kind]}",
                "flag",
                source,
                None,
                SOCIAL_CARE_CONCEPT,
                "social care",
                f"Receiving long-term social care support: {_LONG_TERM_KIND_WORDS[kind]}",
                reason_absent=f"Not receiving long-term {_LONG_TERM_KIND_WORDS[kind]} from social care",
                missing="null",
                description=f"1 when a {kind} service is open at C." + _NOT_KNOWN_NOTE,
            )
            for kind, name in social_care.LONG_TERM_KINDS.items()
        ],
        FeatureSpec(
            social_care.LONG_TERM_SUPPORT_DAYS,
            "Days receiving long-term social care support",
            "days",
            source,
            None,
            SOCIAL_CARE_CONCEPT,
            "social care",
            "Receiving long-term social care support (for {category})",
            noun=("day", "days"),
            missing="null",
            description=(
                "Days from the start of the earliest long-term service open at C to C; empty (NaN) when "
                "none is open." + _NOT_KNOWN_NOTE
            ),
        ),
        FeatureSpec(
            social_care.REQUESTS_90D,
            f"Social care requests or assessments, last {days} days",
            "count",
            source,
            None,  # the 90 days are in the name: one concept with the other social care features
            SOCIAL_CARE_CONCEPT,
            "social care",
            f"{{value:.0f}} {{noun}} in the {days} days to {_AS_OF_RETURN}",
            noun=("social care request or assessment", "social care requests or assessments"),
            missing="null",
            description=f"Request and assessment events that started in the {days} days to C, (C - {days}, C]."
            + _NOT_KNOWN_NOTE,
        ),
        FeatureSpec(
            social_care.REABLEMENT_ENDED_90D,
            f"Reablement ended, last {days} days",
            "flag",
            source,
            None,
            SOCIAL_CARE_CONCEPT,
            "social care",
            f"Reablement ended in the {days} days to {_AS_OF_RETURN}",
            reason_absent=f"No reablement ended in the {days} days to {_AS_OF_RETURN}",
            missing="null",
            description=(
                f"1 when a short_term_reablement service ended in the {days} days to C." + _NOT_KNOWN_NOTE
            ),
        ),
        FeatureSpec(
            social_care.CARER,
            "Unpaid carer",
            "flag",
            source,
            None,
            SOCIAL_CARE_CONCEPT,
            "social care",
            "Is an unpaid carer",
            reason_absent="Not known to social care as an unpaid carer",
            missing="null",
            description=(
                "1 when an event with client_type carer (support for the person as a carer) was open at "
                f"some time in the {social_care.YEAR_DAYS} days to C." + _NOT_KNOWN_NOTE
            ),
        ),
        *[
            FeatureSpec(
                name,
                f"Social care primary support reason: {_SUPPORT_REASON_WORDS[reason]}",
                "flag",
                source,
                None,
                SOCIAL_CARE_CONCEPT,
                "social care",
                f"Social care support for {_SUPPORT_REASON_WORDS[reason]}",
                reason_absent=f"No social care support for {_SUPPORT_REASON_WORDS[reason]}",
                missing="null",
                description=(
                    f"1 when primary_support_reason {reason} is recorded on a service-user event open at "
                    f"some time in the {social_care.YEAR_DAYS} days to C." + _NOT_KNOWN_NOTE
                ),
            )
            for reason, name in social_care.SUPPORT_REASONS.items()
        ],
    ]


def duration_words(days: float) -> str:
    """A duration in words: 9 -> "9 days", 30 -> "4 weeks", 200 -> "7 months", 800 -> "2 years"."""
    days = int(days)
    if days < 14:
        return "1 day" if days == 1 else f"{days} days"
    if days < 56:
        return f"{days // 7} weeks"
    if days < 730:
        return f"{max(2, round(days / 30.44))} months"
    return f"{days // 365} years"


def _windowed_specs(family: _Family, windows: tuple[int, ...]) -> list[FeatureSpec]:
    return [
        FeatureSpec(
            name=f"{family.stem}_{days}d",
            label=f"{family.label}, last {window_words(days)}",
            unit=family.unit,
            source=family.source,
            window=days,
            concept=family.stem,
            group=family.group,
            reason=family.reason,
            noun=family.noun,
            description=family.description,
        )
        for days in windows
    ]


def _acute_extra_specs(settings: FeatureSettings) -> list[FeatureSpec]:
    lookback = window_words(settings.hospital_lookback_days)
    low, high = HFRS_BANDS
    return [
        FeatureSpec(
            "days_since_last_discharge",
            "Days since last hospital discharge",
            "days",
            "apc_spells",
            None,
            "days_since_last_discharge",
            "acute",
            "Discharged from hospital {value:.0f} {noun} ago",
            noun=("day", "days"),
            missing="null",
            description="Days from the last discharge on or before T to T; empty (NaN) if none.",
        ),
        FeatureSpec(
            "days_since_last_ae",
            "Days since last A&E attendance",
            "days",
            "ae_attendances",
            None,
            "days_since_last_ae",
            "acute",
            "Last A&E attendance {value:.0f} {noun} ago",
            noun=("day", "days"),
            missing="null",
            description="Days from the last A&E arrival on or before T to T; empty (NaN) if none.",
        ),
        FeatureSpec(
            "ae_trend_90d",
            "Rise in A&E attendances, last 3 months",
            "attendances",
            "ae_attendances",
            None,
            "ae_trend",
            "acute",
            "A&E attendances {category} by {value:.1f} in the last 3 months against the 9 months before",
            description=(
                "Attendances in the 90 days to T minus 90/275 of those in the 275 days before: above 0 "
                "when A&E use is rising."
            ),
        ),
        FeatureSpec(
            "hospital_frailty_score",
            "Hospital Frailty Risk Score",
            "score",
            "apc_spells",
            None,
            "hospital_frailty",
            "acute",
            "Hospital Frailty Risk Score {value:.1f} ({category}) from hospital diagnoses in the last "
            + lookback,
            description=(
                "Sum of the weights of the distinct ICD-10 categories of the Hospital Frailty Risk Score "
                "(Gilbert et al. 2018; code list icd10_hfrs) among the diagnoses of spells discharged in the "
                f"{settings.hospital_lookback_days} days to T; low risk below {low:g}, intermediate "
                f"{low:g}-{high:g}, high above {high:g}."
            ),
        ),
        FeatureSpec(
            "charlson_index",
            "Charlson comorbidity index",
            "score",
            "apc_spells",
            None,
            "charlson_index",
            "acute",
            "Charlson comorbidity index {value:.0f} from hospital diagnoses in the last " + lookback,
            description=(
                "Charlson weights (1987) of the distinct comorbidity groups (Quan et al. 2005 ICD-10 coding; "
                "code list icd10_charlson) among the diagnoses of spells discharged in the "
                f"{settings.hospital_lookback_days} days to T; the milder form of liver disease, diabetes "
                "or cancer is not counted when the severer one is coded."
            ),
        ),
        FeatureSpec(
            "hospital_ltc_not_on_gp_record",
            "Long-term conditions coded in hospital, not on the GP record",
            "count",
            "apc_spells, gp_diagnoses",
            None,
            "hospital_ltc_not_on_gp_record",
            "acute",
            "{value:.0f} {noun} coded in hospital in the last " + lookback + " but not on the GP record",
            noun=("long-term condition", "long-term conditions"),
            description=(
                "Long-term conditions (code list icd10_conditions, ICD-10 prefix to condition) among the "
                f"diagnoses of spells discharged in the {settings.hospital_lookback_days} days to T that the "
                "GP record does not hold as current at T."
            ),
        ),
    ]


NO_RECORD_TEXT = {
    "days_since_last_discharge": "No hospital discharge on record",
    "days_since_last_ae": "No A&E attendance on record",
    "recorded_efi": "No eFI score recorded",
    social_care.LONG_TERM_SUPPORT_DAYS: "No current long-term social care support on record",
}
SOCIAL_CARE_NOT_KNOWN_TEXT = "Social care not known: the local authority's return is missing"
"""The reason text of a social care feature that is empty because the person's local authority's returns are missing."""


def feature_dictionary(settings: FeatureSettings | None = None) -> dict[str, FeatureSpec]:
    """Every feature the matrix holds under ``settings``, in matrix column order.

    Args:
        settings: Feature settings (windows, include_ethnicity, ...); defaults if None.

    Returns:
        Feature specs by name.
    """
    settings = settings or FeatureSettings()
    families = _windowed_families(settings)
    by_group: dict[str, list[FeatureSpec]] = {
        "demographics": _demographic_specs(settings),
        "primary": _primary_specs(settings),
        "community": [],
        "acute": [],
        "social care": _social_care_specs(),
    }
    for family in families:
        by_group[family.group].extend(_windowed_specs(family, settings.windows))
    by_group["acute"].extend(_acute_extra_specs(settings))
    specs = [spec for group in by_group for spec in by_group[group]]
    return {spec.name: spec for spec in specs}


def feature_names(settings: FeatureSettings | None = None) -> list[str]:
    """The feature columns of the matrix, in order (keys, outcomes and audit columns excluded)."""
    return list(feature_dictionary(settings))


_WINDOW_SUFFIX = re.compile(r"^(?P<stem>.+)_(?P<days>\d+)d$")


def describe_feature(name: str, settings: FeatureSettings | None = None) -> FeatureSpec:
    """The spec of a feature, also for windows not in ``settings`` (e.g. ``ae_attendances_180d``).

    Raises:
        KeyError: If ``name`` is not a feature riskstrat builds.
    """
    dictionary = feature_dictionary(settings)
    if name in dictionary:
        return dictionary[name]
    match = _WINDOW_SUFFIX.match(name)
    if match:
        for spec in dictionary.values():
            if spec.window is not None and spec.concept == match["stem"]:
                days = int(match["days"])
                return replace(
                    spec,
                    name=name,
                    window=days,
                    label=f"{spec.label.rsplit(', last', 1)[0]}, last {window_words(days)}",
                )
    raise KeyError(f"unknown feature {name!r}; see docs/features.md")


def feature_concept(name: str) -> str:
    """The concept a feature belongs to (every window of a count shares one)."""
    return describe_feature(name).concept


def _efi_category_name(score: float) -> str:
    fit, mild, moderate = EFI_CUT_OFFS
    deficits = round(score * 36, 6)
    for index, cut in enumerate((fit, mild, moderate)):
        if deficits <= cut * 36 + 1e-6:
            return EFI_CATEGORIES[index]
    return EFI_CATEGORIES[3]


def reason_text(feature: str, value: float | None) -> str:
    """Plain-English reason for a person's value of a feature.

    Examples: ``reason_text("emergency_admissions_365d", 3)`` ->
    "3 emergency admissions in the last 12 months"; ``reason_text("efi_score", 0.42)``
    -> "Severe frailty (eFI 0.420)".

    Args:
        feature: Feature name.
        value: The person's value (None or NaN when not recorded).

    Returns:
        One sentence fragment, singular or plural as the value needs.
    """
    spec = describe_feature(feature)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if feature not in NO_RECORD_TEXT and spec.source == social_care.SOCIAL_CARE_TABLE:
            return SOCIAL_CARE_NOT_KNOWN_TEXT
        return NO_RECORD_TEXT.get(feature, f"{spec.label}: not recorded")
    value = float(value)
    if spec.unit == "flag":
        return spec.reason if value >= 0.5 else spec.reason_absent
    if feature in ("efi_score", "recorded_efi"):
        category = _efi_category_name(value)
    elif feature == "hospital_frailty_score":
        category = hfrs_band(value)
    elif feature == "ae_trend_90d":
        category, value = ("up" if value >= 0 else "down"), abs(value)
    elif feature == "efi_category":
        category = EFI_CATEGORIES[min(max(round(value), 0), 3)]
    elif feature == social_care.LONG_TERM_SUPPORT_DAYS:
        category = duration_words(value)
    else:
        category = ""
    noun = ""
    if spec.noun:
        noun = spec.noun[0] if round(value) == 1 else spec.noun[1]
    window = window_words(spec.window) if spec.window else ""
    return spec.reason.format(value=value, noun=noun, window=window, category=category)


def render_feature_docs(settings: FeatureSettings | None = None) -> str:
    """The Markdown text of ``docs/features.md`` for the given (default) settings."""
    settings = settings or FeatureSettings()
    dictionary = feature_dictionary(settings)
    windows = ", ".join(str(w) for w in settings.windows)
    lines = [
        "# Features",
        "",
        "<!-- Generated by riskstrat.features.dictionary.render_feature_docs(); do not edit by hand. -->",
        "",
        f"The feature matrix at an as-of date T has one row per person in the cohort at T "
        f"(alive, registered, aged {settings.cohort.min_age}+) and {len(dictionary)} features with the "
        f"default settings (windows {windows} days; `configs/features.yaml`).",
        "",
        "Point in time: every feature uses only events dated on or before T. A `w`-day window "
        "holds events dated in (T - w, T]: an event on T counts, one on T + 1 never does. A&E "
        "attendances are dated by the date part of `arrival_datetime`; hospital spells count "
        "when admitted on or before T, and a discharge after T is unknown at T (the stay is "
        "clipped at T).",
        "",
        "GP conditions count while current at T: a condition's latest diagnosis on or before T must "
        "be later than its latest resolved code on or before T (the QOF register rule), so a code "
        "followed by a resolved code is not a current condition. A recorded eFI or eFI2 score "
        "(condition `recorded_efi`) is read as `recorded_efi`, never as a condition or eFI deficit.",
        "",
        f"Hospital diagnoses: the ICD-10 codes of spells discharged in the "
        f"{settings.hospital_lookback_days} days to T (`hospital_lookback_days`; a spell's diagnoses "
        "are known once it is discharged, so a spell open at T adds nothing), matched by prefix to "
        "the shipped code lists `icd10_hfrs`, `icd10_charlson` and `icd10_conditions` "
        "(`riskstrat/ingest/codelists/`).",
        "",
        "Missing values: counts and flags are 0 for a person with no record; "
        "`imd_decile`/`imd_quintile` are empty (NaN) when the LSOA is not in IMD 2019, and "
        "`days_since_last_discharge`/`days_since_last_ae` are empty (NaN) when there is no "
        "such event on or before T (LightGBM treats NaN as missing).",
        "",
        "Social care: the optional `social_care_events` table (Adult Social Care Client Level Data, "
        "the local authorities' quarterly returns). The features are computed as of the latest "
        "quarterly return due: at C, the end of the latest quarter whose return is due by T (60 days "
        "after the quarter ends; `riskstrat.ingest.social_care.data_cutoff`), at training and scoring "
        "dates alike, so a training date never sees a return that arrived after it. Only events "
        "started on or before C are read; a service is open at C when it started on or before C and "
        "did not end on or before C; the 90- and 365-day windows end at C. A person's local authority "
        "is that of their LSOA (two-tier districts through `social_care.county_of_district` in "
        "`configs/sources.yaml`); `social_care_known` is 1 when that authority's return for the "
        "quarter ending at C is in the extract (a return covers the 12 months to its quarter's end, "
        "so an older missing quarter does not matter). When it is 0 every other social care feature "
        "is empty (NaN: not known, never 0). An extract without the table gives a matrix without the "
        "social care columns, and models trained without them; a champion trained with them scores "
        "such an extract with everyone's social care not known. Every social care feature has the one "
        "concept `social_care`, so a list row gives at most one social care reason, and none from "
        "`social_care_known` or for a person whose social care is not known; the row's Social care "
        "column gives the whole context, up to the data date.",
        "",
        "Ethnicity is not a model feature by default: the 2021-census `ethnic_group` is carried "
        "as an audit column for the fairness audit. `include_ethnicity: true` adds one-hot "
        "`ethnicity_<group>` features.",
        "",
        "Non-feature columns of the matrix: keys `person_id`, `as_of`; outcomes "
        "`emergency_admission`, `frequent_attendance` (training tables, see `configs/outcomes.yaml`); "
        "audit columns `ethnic_group`, `practice_code`, `lsoa_code`, `age_band`, `sex` "
        "(`imd_quintile` is both a feature and an audit column).",
        "",
        "The `concept` column groups every window of the same thing, so a worklist gives one reason "
        "per concept; the reason column is the template filled with the person's value (the noun is "
        "singular for 1).",
        "",
    ]
    titles = {
        "demographics": "Demographics",
        "primary": "Primary care",
        "community": "Community care",
        "acute": "Acute care",
        "social care": "Social care",
    }
    for group, title in titles.items():
        lines += [
            f"## {title}",
            "",
            "| feature | label | unit | source | window (days) | concept | reason | how it is computed |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for spec in dictionary.values():
            if spec.group != group:
                continue
            reason = spec.reason if not spec.noun else spec.reason.replace("{noun}", spec.noun[1])
            if spec.window:
                reason = reason.replace("{window}", window_words(spec.window))
            window = str(spec.window) if spec.window else ""
            cells = [
                f"`{spec.name}`",
                spec.label,
                spec.unit,
                spec.source,
                window,
                spec.concept,
                reason.replace("|", "\\|"),
                spec.description.replace("|", "\\|"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Reason examples",
        "",
        *[
            f"- `{feature}` = {value}: {reason_text(feature, value)}"
            for feature, value in (
                ("emergency_admissions_365d", 1),
                ("emergency_admissions_365d", 3),
                ("ae_attendances_90d", 2),
                ("efi_score", 0.42),
                ("bed_days_30d", 12),
                ("days_since_last_discharge", 9),
                ("ltc_heart_failure", 1),
                ("hospital_frailty_score", 7.4),
                ("charlson_index", 3),
                ("hospital_ltc_not_on_gp_record", 1),
                ("recorded_efi", 0.27),
                ("social_care_long_term_residential", 1),
                ("social_care_long_term_support_days", 400),
                ("social_care_requests_90d", 2),
                ("social_care_reablement_ended_90d", 1),
                ("social_care_carer", 1),
                ("social_care_long_term_support", float("nan")),
            )
        ],
        "",
    ]
    return "\n".join(lines)
