"""What was true of a person at an as-of date T, as Ibis expressions: the one point-in-time engine.

Every stage that asks "at T" asks here: the cohort, the outcomes, the need
measures, the acute features, the worklist status and the list context. The
same expressions run on DuckDB and PySpark.

- A look-back window of ``w`` days at T holds events dated in (T - w, T]: an
  event on T is in the past and counts; an event on T + 1 never does.
- An outcome window of ``h`` days at T holds events dated in (T, T + h].
- Alive at T: no date of death on or before T. Registered at T: registration
  started on or before T (or not recorded) and not ended on or before T.
- An emergency admission is an ``apc_spells`` row whose ADMISSION METHOD is in
  the contract's :data:`~riskstrat.ingest.contract.EMERGENCY_ADMISSION_METHODS`
  (read when the expression is built, so every use follows that one list).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from riskstrat.features.settings import CohortSettings
from riskstrat.ingest import contract

Tables = Mapping[str, ir.Table]
"""Input tables by contract name (``tables["apc_spells"]``), typed as the contract says."""

TYPE1_OPT_OUT = "type1"
"""The ``opt_outs.type`` of a type 1 opt-out (the National Data Opt-out, ``ndo``, does not count)."""


def window_start(as_of: date, days: int) -> date:
    """The last day before a ``days``-day look-back window ending on ``as_of`` (exclusive lower bound)."""
    return as_of - timedelta(days=days)


def in_window(event_date: ir.DateValue, as_of: date, days: int) -> ir.BooleanValue:
    """True for events in the look-back window (as_of - days, as_of]."""
    return (event_date > window_start(as_of, days)) & (event_date <= as_of)


def in_outcome_window(event_date: ir.DateValue, as_of: date, horizon_days: int) -> ir.BooleanValue:
    """True for events in the outcome window (as_of, as_of + horizon_days]."""
    return (event_date > as_of) & (event_date <= as_of + timedelta(days=horizon_days))


def age_in_years(birth_date: ir.DateValue, as_of: date) -> ir.IntegerValue:
    """Age in completed years at ``as_of`` (birthday not yet reached this year -> one less)."""
    before_birthday = (birth_date.month() > as_of.month) | (
        (birth_date.month() == as_of.month) & (birth_date.day() > as_of.day)
    )
    return (as_of.year - birth_date.year() - before_birthday.ifelse(1, 0)).cast("int64")


def died_by(patients: ir.Table, as_of: date) -> ir.BooleanValue:
    """True where a date of death on or before ``as_of`` is recorded (False, not null, otherwise)."""
    return (patients.date_of_death <= as_of).fill_null(False)


def alive_at(patients: ir.Table, as_of: date) -> ir.BooleanValue:
    """True where no date of death on or before ``as_of`` is recorded."""
    return patients.date_of_death.isnull() | (patients.date_of_death > as_of)


def deregistered_by(patients: ir.Table, as_of: date) -> ir.BooleanValue:
    """True where the registration ended on or before ``as_of`` (False, not null, otherwise)."""
    return (patients.registration_end <= as_of).fill_null(False)


def registered_at(patients: ir.Table, as_of: date) -> ir.BooleanValue:
    """True where the registration started on or before ``as_of`` (or is not recorded) and has not ended."""
    started = patients.registration_start.isnull() | (patients.registration_start <= as_of)
    return started & (patients.registration_end.isnull() | (patients.registration_end > as_of))


def cohort_at(tables: Tables, as_of: date, cohort: CohortSettings) -> ir.Table:
    """Patients rows of the people in the cohort at ``as_of``: alive, registered and at least ``cohort.min_age``."""
    patients = tables["patients"]
    old_enough = age_in_years(patients.birth_date, as_of) >= cohort.min_age
    return patients.filter(alive_at(patients, as_of), registered_at(patients, as_of), old_enough)


def is_emergency_admission(admission_method: ir.StringValue) -> ir.BooleanValue:
    """True for the ADMISSION METHOD codes of an emergency admission (the contract's one list)."""
    return admission_method.isin(list(contract.EMERGENCY_ADMISSION_METHODS))


def is_elective_admission(admission_method: ir.StringValue) -> ir.BooleanValue:
    """True for the ADMISSION METHOD codes of an elective admission (the contract's one list)."""
    return admission_method.isin(list(contract.ELECTIVE_ADMISSION_METHODS))


def emergency_spells(tables: Tables) -> ir.Table:
    """The ``apc_spells`` rows that are emergency admissions."""
    spells = tables["apc_spells"]
    return spells.filter(is_emergency_admission(spells.admission_method))


def arrival_date(attendances: ir.Table) -> ir.DateValue:
    """The calendar day of each A&E arrival (``arrival_datetime`` is local wall-clock time)."""
    return attendances.arrival_datetime.date()


def on_caseload_during(caseload: ir.Table, after: date, until: date) -> ir.BooleanValue:
    """True for caseload rows open at some time in (after, until]: started by ``until``, not ended by ``after``."""
    return (caseload.start_date <= until) & (caseload.end_date.isnull() | (caseload.end_date > after))


def on_caseload_at(caseload: ir.Table, as_of: date) -> ir.BooleanValue:
    """True for caseload rows open at ``as_of``: started on or before it, not ended on or before it."""
    return on_caseload_during(caseload, as_of, as_of)


def caseload_teams_at(caseload: ir.Table, as_of: date) -> ir.Table:
    """People on a caseload at ``as_of``, one row each: ``person_id`` and ``caseload_team``.

    ``caseload_team`` names every team holding the person, sorted and joined with ", "
    (a team listed twice is named twice, as the caseload table says).
    """
    active = caseload.filter(on_caseload_at(caseload, as_of))
    teams = active.group_by("person_id").agg(_teams=active.team.collect().sort())
    return teams.select("person_id", caseload_team=teams._teams.join(", "))


def type1_opt_outs(opt_outs: ir.Table) -> ir.Table:
    """People with a type 1 opt-out, one row each: ``person_id``."""
    return opt_outs.filter(opt_outs.type == TYPE1_OPT_OUT).select("person_id").distinct()


def empty_table(schema: Mapping[str, str]) -> ir.Table:
    """A table with no rows and the given column types, for an optional input that is missing."""
    return ibis.memtable({name: [] for name in schema}, schema=ibis.schema(dict(schema)))
