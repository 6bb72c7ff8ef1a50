"""Realised need and caseload exposure in the outcome window, for evaluation only.

These columns look at (T, T + horizon], like the outcomes, and are never model
inputs: the fairness audit compares realised need between groups at equal
predicted risk (Obermeyer et al., Science 2019), and training records who was on
an MDT caseload while their outcome was being observed (Liley et al.).
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from riskstrat.features.point_in_time import (
    Tables,
    in_outcome_window,
    is_emergency_admission,
    on_caseload_during,
)
from riskstrat.features.settings import OutcomeSettings

NEED_COLUMNS: tuple[str, ...] = (
    "emergency_admissions_next_year",
    "bed_days_next_year",
    "on_caseload_in_window",
)


def realised_need(people: ir.Table, tables: Tables, as_of: date, settings: OutcomeSettings) -> ir.Table:
    """Emergency admissions, bed days and caseload exposure in (T, T + horizon] for each person.

    Args:
        people: Table with a ``person_id`` column (the cohort at T).
        tables: Input tables by contract name.
        as_of: The as-of date T.
        settings: Outcome settings; the emergency admission horizon is used (what counts as an
            emergency admission is :func:`~riskstrat.features.point_in_time.is_emergency_admission`).

    Returns:
        ``person_id`` plus :data:`NEED_COLUMNS`, zero where nothing happened.
    """
    horizon = settings.emergency_admission.horizon_days
    start, end = as_of, as_of + timedelta(days=horizon)
    spells = tables["apc_spells"]
    emergency = is_emergency_admission(spells.admission_method)
    in_window = in_outcome_window(spells.admission_date, as_of, horizon)
    # Bed days of any spell overlapping the window, clipped to it; an open spell runs to the window's end.
    discharge = spells.discharge_date.fill_null(ibis.literal(end))
    first_day = ibis.greatest(spells.admission_date, ibis.literal(start))
    last_day = ibis.least(discharge, ibis.literal(end))
    overlaps = (spells.admission_date <= end) & (discharge > start)
    admissions = spells.group_by("person_id").aggregate(
        emergency_admissions_next_year=spells.person_id.count(where=emergency & in_window),
        bed_days_next_year=overlaps.ifelse(last_day.delta(first_day, unit="day"), 0).sum(),
    )
    caseload = tables["caseload"]
    on_caseload = on_caseload_during(caseload, start, end)
    exposure = caseload.filter(on_caseload).select("person_id").distinct().mutate(on_caseload_in_window=1)
    joined = (
        people.select("person_id")
        .left_join(admissions, "person_id")
        .select(
            "person_id",
            admissions.emergency_admissions_next_year,
            admissions.bed_days_next_year,
        )
        .left_join(exposure, "person_id")
    )
    return joined.select(
        "person_id",
        emergency_admissions_next_year=joined.emergency_admissions_next_year.fill_null(0).cast("int64"),
        bed_days_next_year=joined.bed_days_next_year.fill_null(0).cast("int64"),
        on_caseload_in_window=joined.on_caseload_in_window.fill_null(0).cast("int64"),
    )
