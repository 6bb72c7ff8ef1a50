"""The cohort at an as-of date T and the outcomes to predict over (T, T + horizon].

Cohort at T: alive (no date of death on or before T), registered (registration
started on or before T or not recorded, and not ended on or before T) and at
least ``cohort.min_age`` years old.

Outcomes read only events dated after T:

- ``emergency_admission``: a spell with an emergency admission method admitted in
  (T, T + horizon], or, when ``death_counts_as_event``, a death in that window.
  A person who dies before any admission is therefore an event.
- ``frequent_attendance``: at least ``min_attendances`` A&E arrivals in (T, T + horizon].
  A person who dies early in the window simply has fewer attendances (not an event
  unless the threshold was already reached).

A person who deregisters (or moves away) inside the window keeps their row: SUS
and ECDS record admissions and attendances whatever the GP registration, so the
label stays as observed. Outcome windows must end on or before the extract date.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis.expr.types as ir

from riskstrat.errors import RiskstratError
from riskstrat.features.common import Tables, age_in_years, as_flag
from riskstrat.features.settings import CohortSettings, OutcomeSettings

OUTCOME_COLUMNS: tuple[str, ...] = ("emergency_admission", "frequent_attendance")
"""Outcome columns of every training table, in order."""


def cohort_at(tables: Tables, as_of: date, cohort: CohortSettings) -> ir.Table:
    """Patients rows of the people in the cohort at ``as_of`` (alive, registered, old enough)."""
    patients = tables["patients"]
    alive = patients.date_of_death.isnull() | (patients.date_of_death > as_of)
    registered = (patients.registration_start.isnull() | (patients.registration_start <= as_of)) & (
        patients.registration_end.isnull() | (patients.registration_end > as_of)
    )
    old_enough = age_in_years(patients.birth_date, as_of) >= cohort.min_age
    return patients.filter(alive, registered, old_enough)


def outcome_columns(settings: OutcomeSettings) -> list[str]:
    """Names of the outcome columns the settings produce, in order."""
    extra = [f"emergency_admission_{h}d" for h in settings.emergency_admission.additional_horizons_days]
    return [*OUTCOME_COLUMNS, *extra]


def _in_future_window(event_date: ir.DateValue, as_of: date, horizon_days: int) -> ir.BooleanValue:
    return (event_date > as_of) & (event_date <= as_of + timedelta(days=horizon_days))


def check_outcome_window(as_of: date, settings: OutcomeSettings, extract_date: date | None) -> None:
    """Refuse outcome windows that run past the extract date (their labels would be incomplete).

    Raises:
        RiskstratError: Naming the as-of date, the horizon and the extract date.
    """
    if extract_date is None:
        return
    horizons = [
        settings.emergency_admission.horizon_days,
        settings.frequent_attendance.horizon_days,
        *settings.emergency_admission.additional_horizons_days,
    ]
    end = as_of + timedelta(days=max(horizons))
    if end > extract_date:
        raise RiskstratError(
            f"the outcome window of as-of date {as_of} ends on {end}, after the extract date {extract_date}",
            hint="Choose an earlier as-of date or a shorter horizon in configs/outcomes.yaml.",
        )


def outcomes_at(people: ir.Table, tables: Tables, as_of: date, settings: OutcomeSettings) -> ir.Table:
    """Outcome labels over (T, T + horizon] for each person in ``people``.

    Args:
        people: A table with ``person_id`` and ``date_of_death`` (e.g. the cohort at T).
        tables: Input tables by contract name (``apc_spells``, ``ae_attendances``).
        as_of: The as-of date T.
        settings: Outcome settings.

    Returns:
        ``person_id`` and the outcome columns (0/1 integers); no event dated on or
        before T is read.
    """
    admission = settings.emergency_admission
    horizons = {"emergency_admission": admission.horizon_days}
    horizons.update({f"emergency_admission_{h}d": h for h in admission.additional_horizons_days})
    longest = max(horizons.values())

    spells = tables["apc_spells"]
    emergency = spells.filter(
        spells.admission_method.isin(admission.admission_methods),
        _in_future_window(spells.admission_date, as_of, longest),
    )
    first_emergency = emergency.group_by("person_id").agg(_first_emergency=emergency.admission_date.min())

    frequent = settings.frequent_attendance
    attendances = tables["ae_attendances"]
    arrival_date = attendances.arrival_datetime.date()
    future_ae = attendances.filter(_in_future_window(arrival_date, as_of, frequent.horizon_days))
    ae_counts = future_ae.group_by("person_id").agg(_future_attendances=future_ae.count())

    labelled = people.select("person_id", "date_of_death")
    labelled = labelled.left_join(first_emergency, "person_id").drop("person_id_right")
    labelled = labelled.left_join(ae_counts, "person_id").drop("person_id_right")
    labels = {}
    for name, horizon in horizons.items():
        event = _in_future_window(labelled._first_emergency, as_of, horizon)
        if admission.death_counts_as_event:
            event = event | _in_future_window(labelled.date_of_death, as_of, horizon)
        labels[name] = as_flag(event).cast("int64")
    labels["frequent_attendance"] = as_flag(
        labelled._future_attendances.fill_null(0) >= frequent.min_attendances
    ).cast("int64")
    return labelled.select("person_id", **{name: labels[name] for name in outcome_columns(settings)})
