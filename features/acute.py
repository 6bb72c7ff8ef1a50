"""Acute-care features: A&E attendances (ECDS) and hospital spells (SUS APC).

Point in time: attendances count when their arrival date is on or before T.
Spells count when admitted on or before T; a discharge after T is unknown at T,
so such a spell is treated as still open and its stay is clipped at T.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from riskstrat.features.common import days_before, windowed_counts
from riskstrat.features.point_in_time import (
    Tables,
    arrival_date,
    is_elective_admission,
    is_emergency_admission,
    window_start,
)
from riskstrat.features.settings import FeatureSettings

HIGH_ACUITY: tuple[int, ...] = (1, 2)
"""ECDS acuity 1 (immediate resuscitation) and 2 (very urgent)."""
MENTAL_HEALTH_COMPLAINTS: tuple[str, ...] = ("mental_health", "self_harm", "alcohol_drugs")
"""ECDS chief-complaint groups counted by ``ae_mental_health_<w>d`` (ae_attendances.complaint_group)."""
TREND_RECENT_DAYS = 90
TREND_BEFORE_DAYS = 275
"""The A&E trend compares the last 90 days with the 275 before them (together a year)."""


def ae_features(tables: Tables, as_of: date, settings: FeatureSettings) -> ir.Table:
    """A&E attendances, ambulance arrivals, high-acuity attendances and admissions from A&E.

    Returns:
        ``person_id``, ``ae_attendances_<w>d``, ``ae_ambulance_<w>d``,
        ``ae_high_acuity_<w>d``, ``ae_admitted_<w>d``, ``ae_mental_health_<w>d`` (chief complaint
        mental health, self-harm or alcohol/drugs), ``ae_trend_90d`` (attendances in the 90 days to T minus 90/275 of those
        in the 275 days before) and ``days_since_last_ae`` (whole days from the last arrival on
        or before T; null if none).
    """
    attendances = tables["ae_attendances"]
    arrivals = attendances.mutate(arrival_date=arrival_date(attendances))
    past = arrivals.filter(arrivals.arrival_date <= as_of)
    day = past.arrival_date
    windows = settings.windows
    aggregated = past.group_by("person_id").agg(
        **windowed_counts(day, as_of, windows, "ae_attendances"),
        **windowed_counts(day, as_of, windows, "ae_ambulance", past.arrival_mode == "ambulance"),
        **windowed_counts(day, as_of, windows, "ae_high_acuity", past.acuity.isin(HIGH_ACUITY)),
        **windowed_counts(day, as_of, windows, "ae_admitted", past.disposal == "admitted"),
        **windowed_counts(
            day, as_of, windows, "ae_mental_health", past.complaint_group.isin(MENTAL_HEALTH_COMPLAINTS)
        ),
        _recent=(day > window_start(as_of, TREND_RECENT_DAYS)).ifelse(1, 0).sum(),
        _year=(day > window_start(as_of, TREND_RECENT_DAYS + TREND_BEFORE_DAYS)).ifelse(1, 0).sum(),
        _last_ae=day.max(),
    )
    # Attendances in the last 90 days minus the number the 275 days before would give at their rate.
    # Integer arithmetic, then one division by a typed double: Spark reads a bare fractional
    # literal as a DECIMAL, and the column would reach pandas as Python Decimals.
    scaled = (
        aggregated._recent * TREND_BEFORE_DAYS - (aggregated._year - aggregated._recent) * TREND_RECENT_DAYS
    )
    trend = scaled.cast("float64") / ibis.literal(float(TREND_BEFORE_DAYS), type="float64")
    return aggregated.mutate(
        days_since_last_ae=days_before(as_of, aggregated._last_ae), ae_trend_90d=trend.cast("float64")
    ).drop("_last_ae", "_recent", "_year")


def spells_known_at(tables: Tables, as_of: date, settings: FeatureSettings) -> ir.Table:
    """Hospital spells as they were known at T, one row per spell admitted on or before T.

    Adds ``discharge_known`` (the discharge date if on or before T, else null),
    ``stay_end`` (``discharge_known`` or T), ``stay_days`` (length of stay known at
    T), ``is_emergency``, ``is_elective`` and ``is_readmission`` (an emergency
    admission within ``readmission_days`` of a discharge from an earlier spell).
    """
    spells = tables["apc_spells"]
    admitted = spells.filter(spells.admission_date <= as_of)
    discharge_known = (admitted.discharge_date <= as_of).ifelse(admitted.discharge_date, ibis.null("date"))
    admitted = admitted.mutate(discharge_known=discharge_known)
    admitted = admitted.mutate(stay_end=admitted.discharge_known.fill_null(as_of))
    earlier = ibis.window(
        group_by="person_id", order_by=[admitted.admission_date, admitted.spell_id], rows=(None, -1)
    )
    admitted = admitted.mutate(
        stay_days=admitted.stay_end.delta(admitted.admission_date, unit="day"),
        is_emergency=is_emergency_admission(admitted.admission_method),
        is_elective=is_elective_admission(admitted.admission_method),
        previous_discharge=admitted.discharge_known.max().over(earlier),
    )
    gap = admitted.admission_date.delta(admitted.previous_discharge, unit="day")
    is_readmission = admitted.is_emergency & (gap >= 0) & (gap <= settings.readmission_days)
    return admitted.mutate(is_readmission=is_readmission.fill_null(False))


def spell_features(tables: Tables, as_of: date, settings: FeatureSettings) -> ir.Table:
    """Emergency and elective admissions, bed days, long stays, readmissions, days since discharge.

    ``bed_days_<w>d`` is the overlap in days of each stay [admission, discharge or T]
    with [T - w, T], summed over spells; ``long_stays_<w>d`` counts spells admitted in
    the window whose stay known at T is at least ``long_stay_min_days``.
    """
    spells = spells_known_at(tables, as_of, settings)
    day = spells.admission_date
    windows = settings.windows
    readmission_stem = f"readmissions_{settings.readmission_days}d"
    bed_days = {}
    for days in windows:
        start = ibis.greatest(spells.admission_date, ibis.literal(window_start(as_of, days)))
        overlap = spells.stay_end.delta(start, unit="day")
        bed_days[f"bed_days_{days}d"] = (overlap > 0).ifelse(overlap, 0).sum()
    aggregated = spells.group_by("person_id").agg(
        **windowed_counts(day, as_of, windows, "emergency_admissions", spells.is_emergency),
        **windowed_counts(day, as_of, windows, "elective_admissions", spells.is_elective),
        **bed_days,
        **windowed_counts(day, as_of, windows, "long_stays", spells.stay_days >= settings.long_stay_min_days),
        **windowed_counts(day, as_of, windows, readmission_stem, spells.is_readmission),
        _last_discharge=spells.discharge_known.max(),
    )
    return aggregated.mutate(days_since_last_discharge=days_before(as_of, aggregated._last_discharge)).drop(
        "_last_discharge"
    )


def acute_features(tables: Tables, as_of: date, settings: FeatureSettings) -> list[ir.Table]:
    """Every acute aggregate, each one row per person with events (join onto the cohort)."""
    return [ae_features(tables, as_of, settings), spell_features(tables, as_of, settings)]
