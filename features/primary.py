"""Primary-care features: long-term conditions, frailty, prescribing and GP appointments.

Every input is filtered to events dated on or before the as-of date T; a code
recorded after T never counts, even for a condition that began earlier.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from riskstrat.features.common import (
    Tables,
    as_flag,
    bit_count,
    bit_or,
    windowed_counts,
)
from riskstrat.features.demographics import CARE_HOME_CONDITION
from riskstrat.features.point_in_time import in_window, window_start
from riskstrat.features.settings import FeatureSettings
from riskstrat.ingest.reference import conditions, efi_deficits, long_term_conditions

EFI_DEFICIT_COUNT = 36
"""The electronic frailty index divides deficits present by 36 (Clegg et al. 2016)."""
EFI_CUT_OFFS: tuple[float, float, float] = (0.12, 0.24, 0.36)
"""Upper bounds of fit, mild and moderate frailty; above the last is severe."""
EFI_CATEGORIES: tuple[str, ...] = ("Fit", "Mild frailty", "Moderate frailty", "Severe frailty")
POLYPHARMACY_DEFICIT = "polypharmacy"
HOME_VISIT = "home_visit"
NEW_CONDITION_DAYS = 365
BNF_SECTION_DAYS = 365
BNF_SECTION_LENGTH = 4
"""A BNF section is the first four characters of a BNF code (chapter + section, e.g. 0205)."""


def _condition_bits() -> ir.Table:
    """Each vocabulary condition with its own bit (``_bit`` = 2**i)."""
    names = conditions()["condition"].astype(str).tolist()
    return ibis.memtable(
        {"condition": names, "_bit": [1 << index for index in range(len(names))]},
        schema={"condition": "string", "_bit": "int64"},
    )


def _long_term_condition_bits() -> int:
    """The bits of the vocabulary conditions that are long-term conditions, as one integer."""
    return sum(1 << index for index, flag in enumerate(conditions()["is_ltc"]) if flag)


def _has_condition(recorded: ir.IntegerValue, condition: str) -> ir.BooleanValue:
    """True where the set of recorded conditions (condition bits ORed together) holds ``condition``."""
    index = conditions()["condition"].tolist().index(condition)
    return (recorded & (1 << index)) != 0


def _deficit_conditions() -> dict[str, list[str]]:
    """The conditions that evidence each eFI deficit other than polypharmacy (some deficits have several)."""
    by_deficit: dict[str, list[str]] = {}
    for row in conditions().itertuples():
        if row.efi_deficit and row.efi_deficit != POLYPHARMACY_DEFICIT:
            by_deficit.setdefault(row.efi_deficit, []).append(row.condition)
    return by_deficit


RESOLVED = "resolved"
"""gp_diagnoses.status of a resolved code (empty or ``diagnosed`` is a diagnosis)."""
RECORDED_EFI_CONDITION = "recorded_efi"
"""gp_diagnoses.condition of a recorded eFI or eFI2 score (its ``value``); not a condition or deficit."""


def current_conditions(tables: Tables, as_of: date) -> ir.Table:
    """Each person's conditions as recorded at T, one row per person and condition diagnosed on or before T.

    A condition is current at T when its latest diagnosis on or before T is later
    than its latest resolved code on or before T (the QOF register rule: a code, then
    a later resolved code, is not a current condition; a diagnosis on the day of the
    resolved code does not outweigh it).

    Returns:
        ``person_id``, ``condition``, ``first_diagnosed`` (earliest diagnosis on or before T),
        ``is_current`` (bool).
    """
    diagnoses = tables["gp_diagnoses"]
    recorded = diagnoses.filter(diagnoses.event_date <= as_of)
    resolved = recorded.status.fill_null("") == RESOLVED
    day = recorded.event_date
    by_condition = recorded.group_by(["person_id", "condition"]).agg(
        first_diagnosed=resolved.ifelse(ibis.null("date"), day).min(),
        last_diagnosed=resolved.ifelse(ibis.null("date"), day).max(),
        last_resolved=resolved.ifelse(day, ibis.null("date")).max(),
    )
    diagnosed = by_condition.filter(by_condition.last_diagnosed.notnull())
    is_current = diagnosed.last_resolved.isnull() | (diagnosed.last_diagnosed > diagnosed.last_resolved)
    return diagnosed.select("person_id", "condition", "first_diagnosed", is_current=is_current)


def condition_features(tables: Tables, as_of: date) -> ir.Table:
    """Long-term conditions, their count, new conditions, coded frailty deficits and care-home residence.

    Conditions are those current at T (:func:`current_conditions`: a later resolved
    code ends one). Each person's current conditions become one integer holding a
    bit per vocabulary condition (a bitwise OR), and every flag is read from it per
    person, not per diagnosis. A second integer holds the current conditions first
    diagnosed before the 365 days to T; the new conditions are the long-term ones in
    the first and not in the second. Codes outside the condition vocabulary are ignored,
    and ``recorded_efi`` (a score, not a condition: not a long-term condition, no deficit)
    never counts.

    Returns:
        ``person_id``, ``ltc_<condition>`` (0/1), ``ltc_count``, ``new_conditions_365d``
        (current long-term conditions first recorded in the 365 days to T), ``care_home``
        (a current care-home-resident code), and helper columns ``_efi_coded_deficits``
        (distinct non-polypharmacy deficits), ``_polypharmacy_coded`` and ``_gp_conditions``
        (the current long-term conditions as bits, compared with hospital diagnoses).
        People without a recorded vocabulary condition have no row.
    """
    held_now = current_conditions(tables, as_of)
    held_now = held_now.filter(held_now.is_current)
    coded = held_now.inner_join(_condition_bits(), "condition")
    recorded_earlier = coded.first_diagnosed <= window_start(as_of, NEW_CONDITION_DAYS)
    by_person = coded.group_by("person_id").agg(
        _conditions=bit_or(coded._bit),
        _conditions_earlier=bit_or(recorded_earlier.ifelse(coded._bit, 0)),
    )
    long_term = _long_term_condition_bits()
    ltc_count = bit_count(by_person._conditions & long_term)
    ltc_count_earlier = bit_count(by_person._conditions_earlier & long_term)
    held = by_person._conditions
    deficits = [
        as_flag(ibis.or_(*(_has_condition(held, name) for name in names)))
        for names in _deficit_conditions().values()
    ]
    return by_person.select(
        "person_id",
        **{f"ltc_{name}": as_flag(_has_condition(held, name)) for name in long_term_conditions()},
        ltc_count=ltc_count,
        # The earlier set is a subset of the current one, so the difference counts the new ones.
        new_conditions_365d=ltc_count - ltc_count_earlier,
        care_home=as_flag(_has_condition(held, CARE_HOME_CONDITION)),
        _efi_coded_deficits=sum(deficits[1:], deficits[0]),
        _polypharmacy_coded=as_flag(_has_condition(held, POLYPHARMACY_DEFICIT)),
        _gp_conditions=held & long_term,
    )


def recorded_efi_features(tables: Tables, as_of: date, settings: FeatureSettings) -> ir.Table:
    """The latest eFI or eFI2 score recorded in the look-back to T (``recorded_efi``).

    Rows with condition ``recorded_efi`` and a value, dated in (T - ``recorded_efi_days``, T];
    of several on the latest date, the highest. People with none have no row (missing).
    """
    diagnoses = tables["gp_diagnoses"]
    scores = diagnoses.filter(
        (diagnoses.condition == RECORDED_EFI_CONDITION)
        & diagnoses.value.notnull()
        & in_window(diagnoses.event_date, as_of, settings.recorded_efi_days)
        & (diagnoses.status.fill_null("") != RESOLVED)
    )
    latest = scores.group_by("person_id").agg(_latest=scores.event_date.max())
    on_latest = scores.inner_join(latest, "person_id")
    on_latest = on_latest.filter(on_latest.event_date == on_latest._latest)
    return on_latest.group_by("person_id").agg(recorded_efi=on_latest.value.max())


def prescribing_features(tables: Tables, as_of: date) -> ir.Table:
    """Distinct BNF sections issued in the 365 days to T (``bnf_sections_365d``) by person."""
    medications = tables["gp_medications"]
    issued = medications.filter(in_window(medications.issue_date, as_of, BNF_SECTION_DAYS))
    section = issued.bnf_code.substr(0, BNF_SECTION_LENGTH)
    return issued.group_by("person_id").agg(bnf_sections_365d=section.nunique())


def appointment_features(tables: Tables, as_of: date, settings: FeatureSettings) -> ir.Table:
    """GP appointments, home visits and missed appointments (DNA) over each window.

    ``gp_appointments_<w>d`` counts appointments not recorded as DNA (a missing status
    counts as attended); ``gp_home_visits_<w>d`` the attended home visits;
    ``gp_dna_<w>d`` the appointments the person did not attend.
    """
    appointments = tables["gp_appointments"]
    recent = appointments.filter(in_window(appointments.appointment_date, as_of, max(settings.windows)))
    attended = recent.status.fill_null("attended") != "dna"
    day = recent.appointment_date
    return recent.group_by("person_id").agg(
        **windowed_counts(day, as_of, settings.windows, "gp_appointments", attended),
        **windowed_counts(
            day, as_of, settings.windows, "gp_home_visits", attended & (recent["mode"] == HOME_VISIT)
        ),
        **windowed_counts(day, as_of, settings.windows, "gp_dna", recent.status == "dna"),
    )


def primary_features(tables: Tables, as_of: date, settings: FeatureSettings) -> list[ir.Table]:
    """Every primary-care aggregate, each one row per person with events (join onto the cohort)."""
    return [
        condition_features(tables, as_of),
        recorded_efi_features(tables, as_of, settings),
        prescribing_features(tables, as_of),
        appointment_features(tables, as_of, settings),
    ]


def efi_category(score: ir.FloatingValue) -> ir.IntegerValue:
    """EFI category: 0 fit (<= 0.12), 1 mild (<= 0.24), 2 moderate (<= 0.36), 3 severe."""
    fit, mild, moderate = EFI_CUT_OFFS
    # Compare on the deficit count (score * 36) to avoid floating-point ties at the cut-offs.
    deficits = (score * EFI_DEFICIT_COUNT).round(6)
    return ibis.cases(
        (deficits <= fit * EFI_DEFICIT_COUNT + 1e-6, 0),
        (deficits <= mild * EFI_DEFICIT_COUNT + 1e-6, 1),
        (deficits <= moderate * EFI_DEFICIT_COUNT + 1e-6, 2),
        else_=3,
    ).cast("int64")


def frailty_columns(
    coded_deficits: ir.IntegerValue,
    polypharmacy_coded: ir.IntegerValue,
    bnf_sections_365d: ir.IntegerValue,
    settings: FeatureSettings,
) -> dict[str, ir.Value]:
    """``efi_score`` and ``efi_category`` from a person's coded deficits and prescribing.

    The polypharmacy deficit counts when a polypharmacy code is recorded on or
    before T, or when at least ``polypharmacy_min_bnf_sections`` distinct BNF
    sections were issued in the 365 days to T.

    Args:
        coded_deficits: Distinct non-polypharmacy deficits coded (``_efi_coded_deficits``, 0 if none).
        polypharmacy_coded: 1 if a polypharmacy code is recorded (``_polypharmacy_coded``, 0 if none).
        bnf_sections_365d: Distinct BNF sections issued in the 365 days to T (0 if none).
        settings: Feature settings.

    Returns:
        Expressions by column name, for one projection over the joined matrix.
    """
    polypharmacy = as_flag(
        (polypharmacy_coded == 1) | (bnf_sections_365d >= settings.polypharmacy_min_bnf_sections)
    )
    score = (coded_deficits + polypharmacy).cast("float64") / EFI_DEFICIT_COUNT
    return {"efi_score": score, "efi_category": efi_category(score)}


assert len(efi_deficits()) == EFI_DEFICIT_COUNT, "the condition vocabulary must define the 36 eFI deficits"
assert len(conditions()) <= 62, (
    "each condition needs its own bit of a 64-bit integer (see condition_features)"
)
