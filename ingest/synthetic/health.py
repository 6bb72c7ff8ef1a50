"""The latent health process: each person's whole path, drawn up front.

A person's conditions, frailty deficits, care-home move, decline episodes,
frequent-attender spell and persistent propensity to use services are drawn
before any event. Every service's monthly rate is then a function of that path
(age at the month, conditions present, frailty, deprivation, propensity,
episode, care home), so events are Poisson processes given the path and the
true risk at any date has a closed form (see ``truth.py``).

Onsets are drawn on a "health age" that runs ten years ahead in the most
deprived decile (multimorbidity starts about ten years earlier there, as in
Barnett et al. 2012) and a few years ahead for people with a high personal
morbidity score, which makes conditions cluster.

The numbers below are the calibration's knobs; ``docs/synthetic-data.md``
lists the published figures they were tuned to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskstrat.ingest.reference import conditions as condition_vocabulary
from riskstrat.ingest.synthetic.timeline import DAYS_PER_YEAR, Timeline, cumulative_at

DEPRIVATION_YEARS = 10.0
"""Years by which health age runs ahead in the most deprived decile."""
MORBIDITY_YEARS = 6.0
"""Years by which health age runs ahead per SD of the personal morbidity score."""

# name, lifetime share p_max, health age at half of p_max (a50), spread (years),
# years earlier in men, log-tilt of p_max with deprivation, weight in emergency
# risk, weight in mortality, BNF sections prescribed, share ever recorded by the GP.
_CONDITIONS: tuple[tuple, ...] = (
    ("hypertension", 0.62, 68, 10, 2, 0.0, 0.05, 0.0, ("0205", "0206"), 0.92),
    ("diabetes", 0.20, 64, 10, 3, 0.3, 0.25, 0.15, ("0601",), 0.95),
    ("copd", 0.09, 70, 8, 2, 0.8, 0.55, 0.4, ("0301", "0302"), 0.9),
    ("asthma", 0.13, 15, 14, 0, 0.2, 0.2, 0.0, ("0301", "0302"), 0.95),
    ("coronary_heart_disease", 0.20, 76, 9, 6, 0.2, 0.3, 0.2, ("0212", "0209", "0206"), 0.93),
    ("heart_failure", 0.12, 84, 7, 3, 0.2, 0.55, 0.6, ("0202", "0205"), 0.9),
    ("atrial_fibrillation", 0.18, 83, 7, 3, 0.0, 0.3, 0.2, ("0208", "0201"), 0.9),
    ("stroke_tia", 0.12, 82, 8, 3, 0.2, 0.3, 0.3, ("0209", "0212"), 0.93),
    ("chronic_kidney_disease", 0.28, 84, 8, 0, 0.1, 0.3, 0.2, ("0205",), 0.8),
    ("dementia", 0.20, 90, 5, 0, 0.0, 0.5, 0.8, ("0411",), 0.85),
    ("depression", 0.22, 38, 14, -5, 0.4, 0.15, 0.0, ("0403",), 0.85),
    ("anxiety", 0.18, 32, 14, -5, 0.4, 0.25, 0.0, ("0401",), 0.8),
    ("serious_mental_illness", 0.012, 32, 8, 2, 1.0, 0.5, 0.4, ("0402",), 0.95),
    ("cancer", 0.24, 76, 10, 2, 0.1, 0.35, 0.9, ("0803", "0407"), 0.95),
    ("epilepsy", 0.012, 20, 18, 0, 0.5, 0.4, 0.3, ("0408",), 0.97),
    ("osteoporosis", 0.12, 80, 7, -8, 0.0, 0.1, 0.0, ("0606",), 0.75),
    ("rheumatoid_arthritis", 0.02, 58, 12, -5, 0.0, 0.15, 0.1, ("1001", "0802"), 0.95),
    ("osteoarthritis", 0.38, 72, 10, -3, 0.2, 0.05, 0.0, ("0407", "1001"), 0.85),
    ("parkinsons", 0.03, 80, 6, 3, 0.0, 0.4, 0.5, ("0409",), 0.95),
    ("peripheral_vascular_disease", 0.06, 77, 8, 5, 0.5, 0.25, 0.2, ("0209", "0212"), 0.85),
    ("thyroid_disease", 0.09, 58, 14, -10, 0.0, 0.05, 0.0, ("0602",), 0.95),
    ("chronic_liver_disease", 0.025, 56, 10, 3, 0.8, 0.6, 0.8, ("0109",), 0.85),
    ("alcohol_dependence", 0.03, 42, 10, 6, 1.0, 0.7, 0.6, ("0410",), 0.8),
    ("learning_disability", 0.005, -10, 1, 0, 0.3, 0.3, 0.4, (), 0.95),
    ("activity_limitation", 0.45, 86, 6, 0, 0.3, 0.1, 0.1, (), 0.7),
    ("anaemia", 0.30, 82, 9, 0, 0.2, 0.1, 0.1, ("0901",), 0.8),
    ("dizziness", 0.30, 80, 10, 0, 0.1, 0.1, 0.0, (), 0.7),
    ("dyspnoea", 0.30, 80, 9, 0, 0.3, 0.15, 0.1, (), 0.7),
    ("falls", 0.45, 86, 6, 0, 0.1, 0.3, 0.2, (), 0.75),
    ("foot_problems", 0.30, 80, 9, 0, 0.1, 0.05, 0.0, (), 0.6),
    ("fragility_fracture", 0.15, 86, 6, -4, 0.1, 0.2, 0.2, ("0407",), 0.85),
    ("hearing_impairment", 0.40, 82, 9, 2, 0.0, 0.0, 0.0, (), 0.6),
    ("heart_valve_disease", 0.10, 85, 7, 0, 0.0, 0.2, 0.2, (), 0.85),
    ("housebound", 0.22, 91, 5, 0, 0.3, 0.3, 0.4, (), 0.75),
    ("hypotension_syncope", 0.18, 84, 8, 0, 0.0, 0.2, 0.1, (), 0.75),
    ("memory_problems", 0.25, 87, 6, 0, 0.1, 0.1, 0.1, (), 0.7),
    ("mobility_problems", 0.35, 88, 6, 0, 0.2, 0.2, 0.2, (), 0.7),
    ("tremor", 0.07, 80, 9, 0, 0.0, 0.05, 0.0, (), 0.7),
    ("peptic_ulcer", 0.07, 66, 12, 3, 0.3, 0.1, 0.0, ("0103",), 0.9),
    ("requirement_for_care", 0.25, 90, 5, 0, 0.2, 0.3, 0.3, (), 0.7),
    ("care_home_resident", 0.32, 94, 4.5, 0, 0.0, 2.3, 0.5, (), 0.98),
    ("skin_ulcer", 0.12, 87, 6, 0, 0.2, 0.2, 0.2, ("1310",), 0.85),
    ("sleep_disturbance", 0.25, 62, 16, -3, 0.2, 0.05, 0.0, ("0401",), 0.7),
    ("social_vulnerability", 0.12, 82, 10, 0, 0.6, 0.15, 0.1, (), 0.6),
    ("no_fixed_abode", 0.004, 36, 8, 8, 1.5, 0.9, 0.6, (), 0.9),
    ("urinary_incontinence", 0.25, 84, 8, -4, 0.0, 0.1, 0.0, ("0704",), 0.75),
    ("urinary_system_disease", 0.25, 80, 10, 0, 0.0, 0.15, 0.0, ("0704",), 0.75),
    ("visual_impairment", 0.25, 85, 8, 0, 0.1, 0.05, 0.0, ("1106",), 0.7),
    ("weight_loss", 0.12, 86, 7, 0, 0.2, 0.2, 0.3, (), 0.75),
)

CONDITION_PARAMETERS = pd.DataFrame(
    _CONDITIONS,
    columns=[
        "condition", "p_max", "a50", "spread", "male_years", "deprivation_tilt",
        "risk_weight", "death_weight", "bnf_sections", "record_share",
    ],
)  # fmt: skip
"""Onset and effect parameters of every generated condition (not ``polypharmacy``, which is derived)."""

DEFICIT_LIFETIME_SCALE = 1.45
"""Calibration knob: scales the lifetime share of the non-disease frailty deficits (eFI among 65+)."""
DEFICIT_RECORD_BOOST = 0.12
"""Calibration knob: added to the recording share of the non-disease frailty deficits."""
_DEFICIT_ROWS = CONDITION_PARAMETERS.index >= list(CONDITION_PARAMETERS["condition"]).index(
    "activity_limitation"
)
_DEFICIT_ROWS &= CONDITION_PARAMETERS["condition"] != "care_home_resident"
CONDITION_PARAMETERS.loc[_DEFICIT_ROWS, "p_max"] = (
    CONDITION_PARAMETERS.loc[_DEFICIT_ROWS, "p_max"] * DEFICIT_LIFETIME_SCALE
).clip(upper=0.8)
CONDITION_PARAMETERS.loc[_DEFICIT_ROWS, "record_share"] = (
    CONDITION_PARAMETERS.loc[_DEFICIT_ROWS, "record_share"] + DEFICIT_RECORD_BOOST
).clip(upper=0.95)

CONDITIONS: tuple[str, ...] = tuple(CONDITION_PARAMETERS["condition"])
CARE_HOME = CONDITIONS.index("care_home_resident")
FREQUENT_ATTENDER_CONDITIONS = (
    "anxiety",
    "copd",
    "alcohol_dependence",
    "serious_mental_illness",
    "no_fixed_abode",
)
HOME_VISIT_CONDITIONS = ("housebound", "care_home_resident")

# Ethnic differences in lifetime risk (p_max multipliers), approximate (QOF/UK Biobank direction).
_ETHNIC_MULTIPLIERS: dict[str, dict[str, float]] = {
    "diabetes": {"Asian": 2.0, "Black": 1.6, "Mixed": 1.2, "Other": 1.3},
    "hypertension": {"Black": 1.2, "Asian": 1.05},
    "coronary_heart_disease": {"Asian": 1.3, "Black": 0.8},
    "chronic_kidney_disease": {"Asian": 1.2, "Black": 1.3},
    "copd": {"Asian": 0.6, "Black": 0.5, "Other": 0.6},
    "alcohol_dependence": {"Asian": 0.5, "Black": 0.7, "Other": 0.7},
}


def _deficit_columns() -> tuple[list[str], np.ndarray]:
    """The distinct eFI deficits generated conditions map to, and each condition's deficit index (-1 none)."""
    vocabulary = condition_vocabulary().set_index("condition")["efi_deficit"]
    deficit_of = [vocabulary.get(c, "") for c in CONDITIONS]
    deficits = sorted({d for d in deficit_of if d})
    index = np.array([deficits.index(d) if d else -1 for d in deficit_of])
    return deficits, index


EFI_DEFICITS, DEFICIT_OF_CONDITION = _deficit_columns()
EFI_DENOMINATOR = 36


@dataclass(frozen=True)
class EpisodeSpans:
    """Decline episodes of one chunk of people: episode i covers months ``start[i]`` to ``end[i] - 1``."""

    person: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass
class LatentPaths:
    """Each person's whole latent path (one chunk of people).

    Attributes:
        onset_day: Day of onset of each condition, shape (people, conditions); +inf = never.
        morbidity: Personal morbidity score (standard normal).
        propensity: Persistent propensity to use services (gamma, mean 1).
        frequent_attender: Whether the person ever has a frequent-attender spell.
        fa_rate: Extra A&E attendances per year while in the spell.
        fa_months: Whether the spell covers each month, shape (people, months).
        episode: Decline-episode multiplier on each month, shape (people, months) (1 = none).
        death_day: Day of death (+inf = after the grid).
        fa_start: First month of the spell (grid month index; negative = before the grid).
        fa_length: Length of the spell in months.
        episodes: The decline episodes (person, first month, month after the last).
    """

    onset_day: np.ndarray
    morbidity: np.ndarray
    propensity: np.ndarray
    frequent_attender: np.ndarray
    fa_rate: np.ndarray
    fa_months: np.ndarray
    episode: np.ndarray
    death_day: np.ndarray
    fa_start: np.ndarray
    fa_length: np.ndarray
    episodes: EpisodeSpans


def age_at(birth_day: np.ndarray, timeline: Timeline) -> np.ndarray:
    """Age in years at the middle of each month, shape (people, months); negative before birth."""
    return (timeline.month_middle[None, :] - birth_day[:, None]) / DAYS_PER_YEAR


def onset_law(
    male: np.ndarray, depr: np.ndarray, ethnic_group: np.ndarray, morbidity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each person's lifetime share and head start of every condition, shape (people, conditions) each.

    Returns:
        ``p_max`` (chance of ever having the condition) and ``ahead`` (years by which
        health age runs ahead of calendar age). Given the condition, the health age at
        onset is logistic with location ``a50`` and scale ``spread``; the age at onset is
        that minus ``ahead`` (at least 0).
    """
    params = CONDITION_PARAMETERS
    p_max = params["p_max"].to_numpy()[None, :] * np.exp(
        np.outer(depr - 0.4, params["deprivation_tilt"].to_numpy()) + 0.25 * morbidity[:, None]
    )
    group, groups = pd.factorize(np.asarray(ethnic_group, dtype=object))  # -1 = missing
    for condition, multipliers in _ETHNIC_MULTIPLIERS.items():
        column = CONDITIONS.index(condition)
        p_max[:, column] *= np.array([multipliers.get(g, 1.0) for g in groups] + [1.0])[group]
    p_max = np.minimum(p_max, 0.98)
    ahead = DEPRIVATION_YEARS * depr[:, None] + MORBIDITY_YEARS * morbidity[:, None]
    ahead = ahead + np.outer(male, params["male_years"].to_numpy())
    return p_max, ahead


def draw_onsets(
    birth_day: np.ndarray,
    male: np.ndarray,
    depr: np.ndarray,
    ethnic_group: np.ndarray,
    morbidity: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Onset day of every condition for every person (+inf if never).

    Lifetime risk is ``p_max`` (tilted by deprivation and ethnicity); given the
    condition, the health age at onset is logistic around ``a50``. Health age
    runs ahead of calendar age with deprivation, morbidity score and (for some
    conditions) male sex (see :func:`onset_law`).
    """
    params = CONDITION_PARAMETERS
    n, c = birth_day.size, len(params)
    p_max, ahead = onset_law(male, depr, ethnic_group, morbidity)
    u = rng.random((n, c))
    affected = u < p_max
    # Position within the affected: logistic quantile of a fresh uniform.
    v = np.clip(rng.random((n, c)), 1e-6, 1 - 1e-6)
    health_onset_age = params["a50"].to_numpy()[None, :] + params["spread"].to_numpy()[None, :] * np.log(
        v / (1 - v)
    )
    onset_age = np.maximum(health_onset_age - ahead, 0.0)
    onset_day = birth_day[:, None] + onset_age * DAYS_PER_YEAR
    return np.where(affected, onset_day, np.inf)


def presence_weight(onset_day: np.ndarray, weights: np.ndarray, timeline: Timeline) -> np.ndarray:
    """Sum of ``weights`` of conditions present in each month, shape (people, months).

    A condition counts from the month of its onset (the whole month).
    """
    n, c = onset_day.shape
    months = timeline.months
    # Only onsets before the grid's end count (most are never or later): look up their months alone.
    person, condition = np.nonzero(onset_day < timeline.boundaries[-1])
    month = timeline.month_of(onset_day[person, condition])
    increments = np.bincount(
        person * months + month,
        weights=np.broadcast_to(weights, (n, c))[person, condition],
        minlength=n * months,
    )
    return np.cumsum(increments.reshape(n, months), axis=1)


def deficit_onsets(onset_day: np.ndarray) -> np.ndarray:
    """Onset day of each distinct eFI deficit (earliest of its conditions), shape (people, deficits)."""
    result = np.full((onset_day.shape[0], len(EFI_DEFICITS)), np.inf)
    for column, deficit in enumerate(DEFICIT_OF_CONDITION):
        if deficit >= 0:
            np.minimum(result[:, deficit], onset_day[:, column], out=result[:, deficit])
    return result


def frailty_index(onset_day: np.ndarray, timeline: Timeline) -> np.ndarray:
    """Latent electronic frailty index (true deficits / 36, without polypharmacy) per month."""
    deficits = deficit_onsets(onset_day)
    return presence_weight(deficits, np.ones(deficits.shape[1]), timeline) / EFI_DENOMINATOR


def draw_propensity(
    onset_day: np.ndarray, timeline: Timeline, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Persistent propensity (gamma, mean 1) and the frequent-attender spell.

    Frequent attenders come mostly from people with anxiety, COPD, alcohol
    dependence, serious mental illness or no fixed abode; while in their spell
    (one to four years) they make many extra, heavy-tailed (log-normal) A&E visits.

    Returns:
        ``propensity``, ``frequent_attender`` flag, ``fa_rate`` per year, ``fa_months`` mask,
        and the spell's first month ``fa_start`` and length ``fa_length`` (months).
    """
    n = onset_day.shape[0]
    propensity = rng.gamma(2.0, 0.5, n)
    frequent_attender = rng.random(n) < frequent_attender_share(onset_day)
    fa_rate = np.where(frequent_attender, rng.lognormal(*FA_RATE_LOGNORMAL, n), 0.0)
    start = rng.integers(FA_FIRST_START, timeline.months, n)
    length = rng.integers(FA_LENGTHS[0], FA_LENGTHS[1] + 1, n)
    month = np.arange(timeline.months)[None, :]
    fa_months = frequent_attender[:, None] & (month >= start[:, None]) & (month < (start + length)[:, None])
    return propensity, frequent_attender, fa_rate, fa_months, start, length


FA_SHARE_ELIGIBLE = 0.04
"""Share of people who ever have one of ``FREQUENT_ATTENDER_CONDITIONS`` with a frequent-attender spell."""
FA_SHARE_OTHER = 0.003
"""Share of everyone else with a spell."""
FA_RATE_LOGNORMAL = (float(np.log(9.0)), 0.6)
"""Log-mean and log-SD of a frequent attender's extra A&E attendances per year."""
FA_FIRST_START = -24
"""The spell starts in a month drawn uniformly from this (before the grid) to the grid's last month."""
FA_LENGTHS = (12, 48)
"""Shortest and longest spell in months (uniform)."""


FREQUENT_ATTENDER_COLUMNS = [CONDITIONS.index(c) for c in FREQUENT_ATTENDER_CONDITIONS]
"""Columns of ``FREQUENT_ATTENDER_CONDITIONS`` in an onset array."""


def frequent_attender_share(onset_day: np.ndarray) -> np.ndarray:
    """Chance of a frequent-attender spell: higher for anyone who ever has an eligible condition."""
    return frequent_attender_share_given(np.isfinite(onset_day[:, FREQUENT_ATTENDER_COLUMNS]).any(axis=1))


def frequent_attender_share_given(eligible: np.ndarray) -> np.ndarray:
    """Chance of a frequent-attender spell given whether each person ever has an eligible condition."""
    return np.where(eligible, FA_SHARE_ELIGIBLE, FA_SHARE_OTHER)


EPISODE_MULTIPLIER = 3.0
"""Rise of the emergency risk during a decline episode (death hazard rises by its square root)."""
EPISODE_LENGTHS = (2, 4)
"""Shortest and longest decline episode in months (uniform)."""


def episode_rate(age_mid: np.ndarray, frailty_mid: np.ndarray) -> np.ndarray:
    """Decline episodes per year, from age and latent frailty at the grid's middle month (at most 1.5)."""
    rate = 0.02 * np.exp(0.035 * np.clip(age_mid - 40, 0, None) + 4.0 * frailty_mid)
    return np.minimum(rate, 1.5)


def draw_episode_spans(age: np.ndarray, frailty: np.ndarray, rng: np.random.Generator) -> EpisodeSpans:
    """Decline episodes: two to four months of raised risk, commoner with age and frailty.

    Starts are a Poisson process over the grid's months at :func:`episode_rate`.
    """
    n, months = age.shape
    rate = episode_rate(age[:, months // 2], frailty[:, months // 2])
    counts = rng.poisson(rate * months / 12)
    person = np.repeat(np.arange(n), counts)
    start = rng.integers(0, months, person.size)
    end = np.minimum(start + rng.integers(EPISODE_LENGTHS[0], EPISODE_LENGTHS[1] + 1, person.size), months)
    return EpisodeSpans(person, start, end)


def episode_multiplier(spans: EpisodeSpans, people: int, months: int, first_month: int = 0) -> np.ndarray:
    """Multiplier per person-month (``months`` months from ``first_month``): 3.0 in an episode, else 1.0."""
    start = np.clip(spans.start - first_month, 0, months)
    end = np.clip(spans.end - first_month, 0, months)
    change = np.zeros((people, months + 1))
    np.add.at(change, (spans.person, start), 1)
    np.add.at(change, (spans.person, end), -1)
    inside = np.cumsum(change, axis=1)[:, :months] > 0
    return np.where(inside, EPISODE_MULTIPLIER, 1.0)


def death_rate(
    age: np.ndarray,
    onset_day: np.ndarray,
    frailty: np.ndarray,
    depr: np.ndarray,
    episode: np.ndarray,
    timeline: Timeline,
) -> np.ndarray:
    """Annual death hazard per month: Gompertz in age, raised by conditions, frailty and episodes."""
    weights = CONDITION_PARAMETERS["death_weight"].to_numpy()
    burden = presence_weight(onset_day, weights, timeline)
    base = np.exp(-11.2 + 0.098 * np.clip(age, 0, 105))
    base = base + np.where(age < 1, 0.004, 0.0) + 0.00015
    return (
        base
        * np.exp(0.6 * np.minimum(burden, 3.0) + 2.0 * frailty + 0.6 * (depr[:, None] - 0.5))
        * np.sqrt(episode)
    )


def draw_death_day(
    hazard: np.ndarray, entry_day: np.ndarray, timeline: Timeline, rng: np.random.Generator
) -> np.ndarray:
    """Exact death day under a monthly-constant hazard that starts at the person's entry (+inf = not within the grid)."""
    n = hazard.shape[0]
    threshold = rng.exponential(1.0, n) + cumulative_at(hazard, timeline, entry_day)
    per_month = hazard * (timeline.days_in_month / DAYS_PER_YEAR)
    cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(per_month, axis=1)], axis=1)
    month = (cumulative[:, 1:] < threshold[:, None]).sum(axis=1)
    inside = month < timeline.months
    month_c = np.minimum(month, timeline.months - 1)
    rows = np.arange(n)
    rate = np.maximum(hazard[rows, month_c], 1e-12)
    day = timeline.boundaries[month_c] + (threshold - cumulative[rows, month_c]) / rate * DAYS_PER_YEAR
    return np.where(inside, np.floor(day), np.inf)
