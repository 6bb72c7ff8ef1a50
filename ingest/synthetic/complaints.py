"""Synthetic ECDS chief complaints: a complaint group for each A&E attendance.

The mix depends on age (injuries for the young; falls, collapse, breathing,
chest pain and general frailty for the old), on the stream the attendance comes
from (regular, frequent-attender, GP substitution, death in the department) and
on the person's conditions at the time (COPD and heart failure: breathing;
serious mental illness, depression, anxiety: mental health and self-harm;
alcohol dependence: alcohol and drugs; dementia: falls). About 5% of
attendances have no complaint recorded.

Frequent attenders present with mental health problems, self-harm and alcohol or
drug use far more often than other attenders, and many have chronic respiratory
or cardiac disease (Greenfield et al. 2020, Emergency Medicine Journal, a
systematic review of frequent attenders). The multipliers below are round
numbers in that direction, not fitted estimates.
"""

from __future__ import annotations

import numpy as np

from riskstrat.ingest.contract import COMPLAINT_GROUP_CODES

REGULAR, FREQUENT_ATTENDER, SUBSTITUTION, DIED = 0, 1, 2, 3
"""Streams of A&E attendances (the order ``hospital()`` builds them in; deaths in A&E last)."""
NOT_RECORDED_SHARE = 0.05
"""Share of attendances with no chief complaint recorded."""

AGE_BANDS = np.array([18, 45, 65, 80])
"""Upper bounds of the age bands 0-17, 18-44, 45-64, 65-79 (80 and over is the last)."""
_BASE: dict[str, tuple[float, float, float, float, float]] = {
    # group:          0-17   18-44  45-64  65-79  80+
    "injury": (0.38, 0.28, 0.20, 0.13, 0.10),
    "mental_health": (0.02, 0.05, 0.03, 0.015, 0.01),
    "self_harm": (0.015, 0.025, 0.012, 0.004, 0.002),
    "alcohol_drugs": (0.005, 0.025, 0.02, 0.008, 0.003),
    "chest_pain": (0.01, 0.07, 0.11, 0.10, 0.07),
    "breathing": (0.12, 0.06, 0.08, 0.12, 0.13),
    "abdominal": (0.10, 0.13, 0.12, 0.10, 0.08),
    "falls_collapse": (0.02, 0.03, 0.05, 0.12, 0.20),
    "neurological": (0.05, 0.07, 0.07, 0.07, 0.07),
    "infection_fever": (0.14, 0.04, 0.04, 0.05, 0.06),
    "frailty_general": (0.01, 0.02, 0.04, 0.08, 0.13),
    "other": (0.13, 0.20, 0.25, 0.21, 0.17),
}
"""Complaint mix of a regular attendance by age band (rough shares of ECDS chief complaints)."""

_STREAM: dict[int, dict[str, float]] = {
    FREQUENT_ATTENDER: {"mental_health": 4.0, "self_harm": 5.0, "alcohol_drugs": 5.0, "breathing": 1.3, "injury": 0.7},
    SUBSTITUTION: {"other": 1.5, "infection_fever": 1.5, "abdominal": 1.2, "injury": 0.6, "chest_pain": 0.5},
    DIED: {"chest_pain": 4.0, "breathing": 3.0, "falls_collapse": 2.0, "injury": 0.3, "mental_health": 0.2,
           "self_harm": 0.5, "other": 0.3},
}  # fmt: skip
"""Multipliers of the mix by stream (regular attendances: none)."""

CONDITION_EFFECTS: dict[str, dict[str, float]] = {
    "copd": {"breathing": 3.0},
    "heart_failure": {"breathing": 2.5, "chest_pain": 1.3},
    "serious_mental_illness": {"mental_health": 5.0, "self_harm": 3.0},
    "depression": {"mental_health": 2.0, "self_harm": 2.5},
    "anxiety": {"mental_health": 2.5, "chest_pain": 1.2},
    "alcohol_dependence": {"alcohol_drugs": 6.0, "injury": 1.3},
    "dementia": {"falls_collapse": 1.8, "frailty_general": 1.5},
}
"""Multipliers of the mix while the person has each condition (present on the day of arrival)."""


def complaint_weights(age: np.ndarray, stream: np.ndarray, conditions: dict[str, np.ndarray]) -> np.ndarray:
    """Unnormalised weight of each complaint group for each attendance.

    Args:
        age: Age on arrival (years).
        stream: Stream of each attendance (:data:`REGULAR` ... :data:`DIED`).
        conditions: Condition name -> whether the person has it on the day (only
            names in :data:`CONDITION_EFFECTS` are used; missing names count as absent).

    Returns:
        Shape (attendances, groups), columns in ``COMPLAINT_GROUP_CODES`` order.
    """
    base = np.array([_BASE[g] for g in COMPLAINT_GROUP_CODES]).T
    band = np.searchsorted(AGE_BANDS, np.asarray(age), side="right")
    weights = base[band].copy()
    column = {g: i for i, g in enumerate(COMPLAINT_GROUP_CODES)}
    for code, effects in _STREAM.items():
        rows = stream == code
        for group, factor in effects.items():
            weights[rows, column[group]] *= factor
    for name, effects in CONDITION_EFFECTS.items():
        present = conditions.get(name)
        if present is None:
            continue
        for group, factor in effects.items():
            weights[present, column[group]] *= factor
    return weights


def draw_complaint_groups(
    age: np.ndarray, stream: np.ndarray, conditions: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """A complaint group for each attendance (None where not recorded).

    Args:
        age: Age on arrival.
        stream: Stream of each attendance.
        conditions: Condition name -> present on the day, per attendance.
        rng: The generator's own ECDS detail stream (so no other table changes).

    Returns:
        Object array of ``COMPLAINT_GROUP_CODES`` values and None.
    """
    weights = complaint_weights(age, stream, conditions)
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(weights.shape[0])
    pick = np.minimum((u[:, None] > cumulative).sum(axis=1), len(COMPLAINT_GROUP_CODES) - 1)
    groups = np.array(COMPLAINT_GROUP_CODES, dtype=object)[pick]
    groups[rng.random(weights.shape[0]) < NOT_RECORDED_SHARE] = None
    return groups
