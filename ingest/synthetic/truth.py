"""The oracle: each person's true probability of each outcome at an as-of date.

Given the latent path, emergency admissions (A&E-admitted and direct) and
deaths are Poisson processes with monthly-constant rates, plus a 30-day
excess readmission hazard after each emergency discharge. So, for a person
alive at T,

    P(emergency admission or death in (T, T+h]) = 1 - exp(-integral of (admission + death + readmission excess))

exactly. Readmission excess counts for spells admitted on or before T.
Frequent attendance (>= 5 A&E attendances in 365 days) accounts for death
truncation by splitting the year into 12 equal parts: the chance of dying in
each part (exact) times the chance of 5+ attendances up to the part's middle.
The only approximations: death within a part is taken at its middle for the
attendance count, and terminal admissions added before some deaths (about a
third of deaths, days before death) are not in the hazard.
"""

from __future__ import annotations

import numpy as np

from riskstrat.ingest.synthetic.rates import ServiceRates
from riskstrat.ingest.synthetic.timeline import (
    DAYS_PER_YEAR,
    OUTCOME_DAYS,
    Timeline,
    cumulative_at,
)

FREQUENT_ATTENDANCE_THRESHOLD = 5
_PARTS = 12


def poisson_at_least(mean: np.ndarray, k: int) -> np.ndarray:
    """P(Poisson(mean) >= k)."""
    term = np.exp(-mean)
    below = np.zeros_like(mean)
    for j in range(k):
        below = below + term
        term = term * mean / (j + 1)
    return np.clip(1.0 - below, 0.0, 1.0)


def readmission_excess(
    spell_person: np.ndarray,
    spell_admission: np.ndarray,
    spell_discharge: np.ndarray,
    spell_hazard: np.ndarray,
    people: int,
    as_of: int,
    horizon: int,
) -> np.ndarray:
    """Expected readmissions in (T, T+horizon] from spells admitted on or before T, per person."""
    known = spell_admission <= as_of
    start = np.maximum(spell_discharge[known] + 1, as_of + 1)
    end = np.minimum(spell_discharge[known] + 31, as_of + horizon + 1)
    overlap = np.clip(end - start, 0, None)
    return np.bincount(
        spell_person[known], weights=spell_hazard[known] * overlap / DAYS_PER_YEAR, minlength=people
    )


def emergency_admission_probability(
    total: np.ndarray,
    cumulative: np.ndarray,
    excess: np.ndarray,
    timeline: Timeline,
    as_of: int,
    horizon: int,
) -> np.ndarray:
    """True P(emergency admission or death in (T, T+horizon]) given alive at T.

    Args:
        total: Emergency admission plus death rate per month.
        cumulative: ``cumulative_table(total, timeline)``.
        excess: Expected readmissions in the window from spells admitted by T.
        timeline: The grid.
        as_of: T (day number).
        horizon: Window length in days.
    """
    end = cumulative_at(total, timeline, as_of + horizon + 1, cumulative)
    integral = end - cumulative_at(total, timeline, as_of + 1, cumulative)
    return 1.0 - np.exp(-(integral + excess))


def frequent_attendance_probability(
    ae: np.ndarray,
    ae_cumulative: np.ndarray,
    rates: ServiceRates,
    death_cumulative: np.ndarray,
    timeline: Timeline,
    as_of: int,
) -> np.ndarray:
    """True P(>= 5 A&E attendances in (T, T+365]) given alive at T, allowing for death.

    Args:
        ae: All A&E attendance rates per month.
        ae_cumulative: The cumulative table of ``ae``.
        rates: The service rates (for the death hazard).
        death_cumulative: The cumulative table of the death hazard.
        timeline: The grid.
        as_of: T (day number).
    """
    edges = as_of + 1 + np.linspace(0, OUTCOME_DAYS, _PARTS + 1)
    ae_at = {i: cumulative_at(ae, timeline, e, ae_cumulative) for i, e in enumerate(edges)}
    death_at = [cumulative_at(rates.death, timeline, e, death_cumulative) for e in edges]
    probability = np.zeros(ae.shape[0])
    for part in range(_PARTS):
        middle = (edges[part] + edges[part + 1]) / 2
        dies = np.exp(-(death_at[part] - death_at[0])) - np.exp(-(death_at[part + 1] - death_at[0]))
        attendances = cumulative_at(ae, timeline, middle, ae_cumulative) - ae_at[0]
        probability += dies * poisson_at_least(attendances, FREQUENT_ATTENDANCE_THRESHOLD)
    survives = np.exp(-(death_at[_PARTS] - death_at[0]))
    probability += survives * poisson_at_least(ae_at[_PARTS] - ae_at[0], FREQUENT_ATTENDANCE_THRESHOLD)
    return probability
