"""Primary-care features: long-term conditions, frailty, prescribing and GP appointments.

Every input is filtered to events dated on or before the as-of date T; a code
recorded after T never counts, even for a condition that began earlier.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from riskstrat.features.common import Tables, as_flag, in_window, window_start, windowed_counts
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


def _deficit_of_condition() -> dict[str, str]:
    table = conditions()
    return {
        row.condition: row.efi_deficit
        for row in table.itertuples()
        if row.efi_deficit and row.efi_deficit != POLYPHARMACY_DEFICIT
    }


def condition_features(tables: Tables, as_of: date) -> ir.Table:
    """Long-term conditions, their count, new conditions and coded frailty deficits by person.

    Returns:
        ``person_id``, ``ltc_<condition>`` (0/1), ``ltc_count``, ``new_conditions_365d``
        (long-term conditions first recorded in the 365 days to T), and helper columns
        ``_efi_coded_deficits`` (distinct non-polypharmacy deficits) and ``_polypharmacy_coded``.
    """
    diagnoses = tables["gp_diagnoses"]
    recorded = diagnoses.filter(diagnoses.event_date <= as_of)
    # One pass over the diagnoses with conditional aggregates, rather than one per condition.
    new_since = window_start(as_of, NEW_CONDITION_DAYS)
    aggregates = {}
    first_recorded = {}
    for name in long_term_conditions():
        is_condition = recorded.condition == name
        aggregates[f"ltc_{name}"] = is_condition.ifelse(1, 0).max()
        first_recorded[name] = recorded.event_date.min(where=is_condition)
    deficit = recorded.condition.substitute(_deficit_of_condition(), else_=None)
    aggregates["_efi_coded_deficits"] = deficit.nunique()
    aggregates["_polypharmacy_coded"] = (recorded.condition == POLYPHARMACY_DEFICIT).ifelse(1, 0).max()
    by_person = recorded.group_by("person_id").agg(
        **aggregates, **{f"_first_{name}": first for name, first in first_recorded.items()}
    )
    ltc_flags = [by_person[f"ltc_{name}"] for name in first_recorded]
    new_flags = [
        (by_person[f"_first_{name}"] > new_since).ifelse(1, 0).fill_null(0) for name in first_recorded
    ]
    return by_person.mutate(
        ltc_count=sum(ltc_flags[1:], ltc_flags[0]),
        new_conditions_365d=sum(new_flags[1:], new_flags[0]),
    ).drop(*[f"_first_{name}" for name in first_recorded])


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
        **windowed_counts(recent, day, as_of, settings.windows, "gp_appointments", attended),
        **windowed_counts(
            recent, day, as_of, settings.windows, "gp_home_visits", attended & (recent["mode"] == HOME_VISIT)
        ),
        **windowed_counts(recent, day, as_of, settings.windows, "gp_dna", recent.status == "dna"),
    )


def primary_features(tables: Tables, as_of: date, settings: FeatureSettings) -> list[ir.Table]:
    """Every primary-care aggregate, each one row per person with events (join onto the cohort)."""
    return [
        condition_features(tables, as_of),
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


def derive_frailty(matrix: ir.Table, settings: FeatureSettings) -> ir.Table:
    """Add ``efi_score`` and ``efi_category`` once diagnoses and prescribing are joined.

    The polypharmacy deficit counts when a polypharmacy code is recorded on or
    before T, or when at least ``polypharmacy_min_bnf_sections`` distinct BNF
    sections were issued in the 365 days to T.
    """
    polypharmacy = as_flag(
        (matrix._polypharmacy_coded == 1)
        | (matrix.bnf_sections_365d >= settings.polypharmacy_min_bnf_sections)
    )
    score = (matrix._efi_coded_deficits + polypharmacy).cast("float64") / EFI_DEFICIT_COUNT
    matrix = matrix.mutate(efi_score=score)
    return matrix.mutate(efi_category=efi_category(matrix.efi_score)).drop(
        "_efi_coded_deficits", "_polypharmacy_coded"
    )


assert len(efi_deficits()) == EFI_DEFICIT_COUNT, "the condition vocabulary must define the 36 eFI deficits"
