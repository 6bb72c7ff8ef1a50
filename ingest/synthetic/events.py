"""Turn latent rates into events, as numpy columns (one chunk of people).

Events are Poisson processes given the latent path: a Poisson count per
person-month and a uniform day within the month. Events falling outside a
person's life are removed later, together with those outside the registration
window and after the extract date (``generate.py``).
"""

from __future__ import annotations

import numpy as np

from riskstrat.ingest.synthetic.rates import (
    ACUITY_LOW,
    acuity_mix,
    admit_probability,
)
from riskstrat.ingest.synthetic.timeline import DAYS_PER_YEAR, Timeline

Columns = dict[str, np.ndarray]

_EMERGENCY_DIAGNOSES_YOUNG = (
    "J06.9",
    "A09.9",
    "R10.4",
    "S06.0",
    "J45.9",
    "R07.4",
    "N39.0",
    "L03.1",
    "F10.0",
    "R50.9",
)
_EMERGENCY_DIAGNOSES_OLD = ("J18.9", "N39.0", "R07.4", "J44.1", "I50.9", "S72.0", "R55", "I48.9", "I63.9", "E87.1", "L03.1", "R41.0")  # fmt: skip
_ELECTIVE_DIAGNOSES = ("H25.9", "M17.1", "K80.2", "N40", "Z51.1", "C50.9", "K40.9", "M16.1", "D12.6", "C61")
_MATERNITY_DIAGNOSES = ("O80", "O70.1", "O62.2", "O42.0")


def poisson_days(
    rate: np.ndarray, timeline: Timeline, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw events of a monthly-constant annual rate.

    Args:
        rate: Annual rate per person-month, shape (people, months).
        timeline: The grid.
        rng: Random generator.

    Returns:
        ``person`` (row index) and ``day`` (day number) of every event, sorted by person then day.
    """
    months = timeline.months
    expected = rate * (timeline.days_in_month / DAYS_PER_YEAR)
    counts = rng.poisson(expected).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    person, month = np.divmod(cell, months)
    day = timeline.boundaries[month] + np.floor(rng.random(cell.size) * timeline.days_in_month[month]).astype(
        np.int64
    )
    order = np.lexsort((day, person))
    return person[order], day[order]


def age_on(birth_day: np.ndarray, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Age in years of each event's person on its day."""
    return (day - birth_day[person]) / DAYS_PER_YEAR


def pick(
    options: tuple[str, ...], probabilities: np.ndarray | None, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``size`` codes from ``options``."""
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=size, p=probabilities)]


def ae_attendances(
    person: np.ndarray,
    day: np.ndarray,
    age: np.ndarray,
    low_acuity: bool,
    substitution: bool,
    rng: np.random.Generator,
) -> Columns:
    """Details of A&E attendances: acuity, admission (thinning), department, arrival, times, disposal.

    Args:
        person: Row index of each attendance's person.
        day: Arrival day.
        age: Age on arrival.
        low_acuity: Whether the stream uses the low-acuity mix (frequent attenders, GP substitution).
        substitution: Whether these visits replace GP care (type 01/03 only).
        rng: Random generator.
    """
    n = person.size
    mix = np.broadcast_to(ACUITY_LOW, (n, 5)) if low_acuity else acuity_mix(age)
    acuity = (rng.random(n)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1) + 1
    acuity = np.minimum(acuity, 5)
    admitted = rng.random(n) < admit_probability(age, acuity)
    department = np.full(n, "01", dtype=object)
    u = rng.random(n)
    minor = acuity >= 4
    department[(acuity == 3) & (u < 0.15)] = "03"
    department[minor & (u < 0.40)] = "03"
    if not substitution:
        department[minor & (u >= 0.40) & (u < 0.43)] = "04"
        department[minor & (u >= 0.43) & (u < 0.45)] = "02"
    department[admitted] = "01"
    p_ambulance = np.array([0.9, 0.6, 0.3, 0.08, 0.03])[acuity - 1] * np.clip(
        0.4 + np.clip(age, 0, 100) / 80, 0.4, 1.6
    )
    arrival_mode = np.where(rng.random(n) < np.minimum(p_ambulance, 0.97), "ambulance", "other").astype(
        object
    )
    hour = rng.choice(24, size=n, p=_ARRIVAL_HOURS)
    arrival = day * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    stay_hours = np.where(admitted, rng.lognormal(np.log(7.0), 0.4, n), rng.lognormal(np.log(2.8), 0.5, n))
    departure = arrival + (stay_hours * 3600).astype(np.int64)
    v = rng.random(n)
    disposal = np.where(v < 0.78, "discharged", np.where(v < 0.90, "referred", "left")).astype(object)
    disposal[admitted] = "admitted"
    return {
        "person": person,
        "day": day,
        "arrival": arrival,
        "departure": departure,
        "department_type": department,
        "arrival_mode": arrival_mode,
        "acuity": acuity,
        "disposal": disposal,
        "admitted": admitted,
    }


_ARRIVAL_HOURS = np.array(
    [2, 1.5, 1.2, 1, 1, 1.2, 2, 3.5, 5, 6, 6.5, 6.5, 6.3, 6, 6, 5.8, 5.6, 5.5, 5.3, 5, 4.5, 4, 3.3, 2.6]
)
_ARRIVAL_HOURS = _ARRIVAL_HOURS / _ARRIVAL_HOURS.sum()


def length_of_stay(age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Emergency length of stay in days: many same-day stays, longer with age."""
    median = np.where(age >= 85, 7.0, np.where(age >= 65, 4.5, 2.0))
    days = np.ceil(rng.lognormal(np.log(median), 0.9))
    same_day = rng.random(age.size) < np.where(age >= 65, 0.18, 0.32)
    return np.where(same_day, 0, days).astype(np.int64)


def spells(
    person: np.ndarray,
    admission_day: np.ndarray,
    los: np.ndarray,
    method: np.ndarray,
    diagnosis: np.ndarray,
    death_day: np.ndarray,
    in_care_home: np.ndarray,
    rng: np.random.Generator,
) -> Columns:
    """Hospital spells with discharge details; a death inside the spell ends it (method 4)."""
    n = person.size
    discharge = admission_day + los
    death = death_day[person]
    died = death <= discharge
    discharge = np.where(died, np.maximum(death, admission_day), discharge)
    u = rng.random(n)
    destination = np.where(
        u < 0.02,
        "other_hospital",
        np.where(u < 0.025, "hospice", np.where(u < 0.035, "temporary_residence", "usual_residence")),
    ).astype(object)
    destination[(u > 0.99)] = "not_known"
    destination[in_care_home] = "care_home"
    discharge_method = np.where(rng.random(n) < 0.03, "2", "1").astype(object)
    destination[died] = "died"
    discharge_method[died] = "4"
    return {
        "person": person,
        "admission_day": admission_day,
        "discharge_day": discharge.astype(np.float64),
        "admission_method": method,
        "primary_diagnosis": diagnosis,
        "discharge_destination": destination,
        "discharge_method": discharge_method,
        "died": died,
    }


def emergency_diagnoses(age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ICD-10 primary diagnosis of emergency spells (commoner causes by age group)."""
    young = pick(_EMERGENCY_DIAGNOSES_YOUNG, None, age.size, rng)
    old = pick(_EMERGENCY_DIAGNOSES_OLD, None, age.size, rng)
    return np.where(age >= 60, old, young)


def direct_methods(size: int, rng: np.random.Generator) -> np.ndarray:
    """Admission methods of emergency admissions not via A&E."""
    return pick(
        ("22", "24", "23", "28", "2D", "2B"), np.array([0.5, 0.15, 0.05, 0.14, 0.12, 0.04]), size, rng
    )


def readmissions(
    person: np.ndarray, discharge_day: np.ndarray, hazard: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Readmissions from the 30-day excess hazard after each emergency discharge.

    The excess hazard runs over days d+1..d+30 after the (untruncated) discharge day d.

    Returns:
        ``person`` and ``day`` of each readmission.
    """
    counts = rng.poisson(hazard * 30 / DAYS_PER_YEAR)
    index = np.repeat(np.arange(person.size), counts)
    day = discharge_day[index] + 1 + np.floor(rng.random(index.size) * 30).astype(np.int64)
    return person[index], day.astype(np.int64)


def elective_los(size: int, rng: np.random.Generator) -> np.ndarray:
    """Elective length of stay: mostly day cases."""
    return np.where(rng.random(size) < 0.65, 0, np.ceil(rng.lognormal(np.log(2.5), 0.7, size))).astype(
        np.int64
    )


def gp_appointments(
    person: np.ndarray,
    age: np.ndarray,
    home_visit_eligible: np.ndarray,
    depr: np.ndarray,
    rng: np.random.Generator,
) -> Columns:
    """Mode and status of GP appointments; home visits for the housebound and care-home residents."""
    n = person.size
    u = rng.random(n)
    mode = np.where(u < 0.60, "face_to_face", np.where(u < 0.92, "telephone", "online")).astype(object)
    visit = home_visit_eligible & (rng.random(n) < 0.5)
    mode[visit] = "home_visit"
    mode[~home_visit_eligible & (rng.random(n) < 0.004) & (age >= 75)] = "home_visit"
    p_dna = 0.03 + 0.04 * depr[person] + np.where((age >= 16) & (age < 35), 0.03, 0.0)
    status = np.where((rng.random(n) < p_dna) & (mode != "home_visit"), "dna", "attended").astype(object)
    return {"mode": mode, "status": status}


def repeat_issues(
    person: np.ndarray,
    section: np.ndarray,
    start_day: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat prescription issues every 28, 56 or 84 days from ``start_day``, kept within [lower, upper].

    Args:
        person: Row index per (person, section) pair.
        section: BNF section code index per pair.
        start_day: First issue day per pair.
        lower: First day that may hold an issue, per pair.
        upper: Last day that may hold an issue, per pair.
        rng: Random generator.

    Returns:
        ``pair`` (index into the inputs) and ``day`` of each issue.
    """
    interval = rng.choice(np.array([28, 56, 84]), size=person.size, p=[0.45, 0.35, 0.20])
    start = start_day + rng.integers(0, 7, person.size)
    skip = np.ceil(np.clip(lower - start, 0, None) / interval)
    first = start + skip * interval
    count = np.where(upper >= first, np.floor((upper - first) / interval) + 1, 0).astype(np.int64)
    pair = np.repeat(np.arange(person.size), count)
    offset = np.arange(pair.size) - np.repeat(np.cumsum(count) - count, count)
    jitter = rng.integers(-3, 4, pair.size)
    day = first[pair] + offset * interval[pair] + jitter
    return pair, np.clip(day, lower[pair], upper[pair]).astype(np.int64)
