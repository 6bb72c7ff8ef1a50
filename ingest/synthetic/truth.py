"""The oracle: each person's true probability of each outcome given the latent state at an as-of date.

The oracle may use what has happened by T, never what happens after it (see
:func:`true_risk_at`, which averages the closed forms below over the future
drawn from the generator's own laws). Given a whole latent path, emergency
admissions (A&E-admitted and direct) and deaths are Poisson processes with
monthly-constant rates, plus a 30-day excess readmission hazard after each
emergency discharge. So, for a person
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

from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from riskstrat.ingest.synthetic.health import (
    CONDITION_PARAMETERS,
    DEFICIT_OF_CONDITION,
    EFI_DEFICITS,
    EFI_DENOMINATOR,
    EPISODE_LENGTHS,
    FA_FIRST_START,
    FA_LENGTHS,
    FA_RATE_LOGNORMAL,
    FREQUENT_ATTENDER_COLUMNS,
    EpisodeSpans,
    LatentPaths,
    age_at,
    death_rate,
    deficit_onsets,
    episode_multiplier,
    episode_rate,
    frailty_index,
    frequent_attender_share_given,
    onset_law,
)
from riskstrat.ingest.synthetic.rates import service_rates
from riskstrat.ingest.synthetic.timeline import (
    DAYS_PER_YEAR,
    OUTCOME_DAYS,
    Timeline,
)

FREQUENT_ATTENDANCE_THRESHOLD = 5
_PARTS = 12


def integral_weights(timeline: Timeline, days: np.ndarray) -> np.ndarray:
    """Weights ``w`` such that ``rate @ w`` integrates each person's rate from the grid start to each day.

    The same integral as ``cumulative_at`` for days shared by everyone, as one matrix
    product instead of a table and a lookup per day; shape (months, days).
    """
    month = np.minimum(timeline.month_of(days), timeline.months - 1)
    partial = np.maximum(days - timeline.boundaries[month], 0) / DAYS_PER_YEAR
    grid_month = np.arange(timeline.months)[:, None]
    whole = np.where(grid_month < month[None, :], (timeline.days_in_month / DAYS_PER_YEAR)[:, None], 0.0)
    return whole + np.where(grid_month == month[None, :], partial[None, :], 0.0)


def poisson_at_least(mean: np.ndarray, k: int) -> np.ndarray:
    """P(Poisson(mean) >= k)."""
    # 1 + m + m^2/2! + ... + m^(k-1)/(k-1)!, by Horner's rule (in place: the arrays are large).
    below = mean / (k - 1)
    below += 1.0
    for j in range(k - 2, 0, -1):
        below *= mean
        below /= j
        below += 1.0
    result = np.negative(mean)
    np.exp(result, out=result)
    result *= below
    np.subtract(1.0, result, out=result)
    return np.maximum(result, 0.0, out=result)


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
    total_from: np.ndarray, total_to: np.ndarray, excess: np.ndarray
) -> np.ndarray:
    """True P(emergency admission or death in a window) given alive at its start.

    Args:
        total_from: Integral of the emergency admission plus death rate to the window's first day.
        total_to: The same to the day after its last.
        excess: Expected readmissions in the window from spells admitted by T.
    """
    return 1.0 - np.exp(-((total_to - total_from) + excess))


def frequent_attendance_probability(ae_at: np.ndarray, survival: np.ndarray) -> np.ndarray:
    """True P(>= 5 A&E attendances in (T, T+365]) given alive at T, allowing for death.

    The year is split into ``_PARTS`` equal parts: the chance of dying in each part
    (exact) times the chance of 5+ attendances up to the part's middle, plus the
    chance of surviving the year times the chance of 5+ in it.

    Args:
        ae_at: Integral of all A&E attendance rates to T+1, each part's middle and T+366,
            shape (people, parts + 2).
        survival: Chance of dying in each part, then of surviving the year, shape (people, parts + 1).
    """
    attendances = ae_at[:, 1:] - ae_at[:, :1]
    return (survival * poisson_at_least(attendances, FREQUENT_ATTENDANCE_THRESHOLD)).sum(axis=1)


# ----------------------------------------------------------------------------- the oracle at T

TRUTH_DRAWS = 16
"""Monte Carlo draws of the future latent path per as-of date (more = smoother oracle, slower)."""


@dataclass(frozen=True)
class OracleInputs:
    """What the oracle may use for one chunk of people: traits, the latent path up to T, past spells.

    The latent path holds the whole timeline; :func:`true_risk_at` reads only what
    has happened by the as-of date and redraws the rest from the generator's own laws.

    Attributes:
        timeline: The monthly grid.
        birth_day: Day of birth.
        male: Whether male.
        depr: Deprivation 0-1.
        ethnic_group: True census group.
        latent: The latent paths.
        barrier: Whether each person faces the access barrier.
        gp_reduction: Share of GP appointments the barrier removes.
        ae_substitution: A&E visits per lost GP appointment.
        spells: Primary emergency spells (person, admission day, discharge day, readmission hazard).
        prior: The onset law, which is the same at every as-of date (see :func:`with_onset_prior`);
            None to compute it at each call.
    """

    timeline: Timeline
    birth_day: np.ndarray
    male: np.ndarray
    depr: np.ndarray
    ethnic_group: np.ndarray
    latent: LatentPaths
    barrier: np.ndarray
    gp_reduction: float
    ae_substitution: float
    spells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    prior: OnsetPrior | None = None


@dataclass(frozen=True)
class OnsetPrior:
    """Each person's onset law, the same at every as-of date, shape (people, conditions) each.

    Attributes:
        p_max: Chance of ever having each condition (:func:`onset_law`).
        ahead: Years by which health age runs ahead of calendar age (:func:`onset_law`).
        reached_end: P(onset by the timeline's end | ever having the condition).
    """

    p_max: np.ndarray
    ahead: np.ndarray
    reached_end: np.ndarray


def _onset_share_by(day: float, birth_day: np.ndarray, ahead: np.ndarray) -> np.ndarray:
    """P(onset by ``day`` | ever), logistic in health age, per person and condition."""
    params = CONDITION_PARAMETERS
    # 1 / (1 + exp(-clip((age + ahead - a50) / spread))), in place: the arrays are people x conditions.
    share = ahead + ((day - birth_day)[:, None] / DAYS_PER_YEAR)
    share -= params["a50"].to_numpy()[None, :]
    share /= params["spread"].to_numpy()[None, :]
    np.clip(share, -50, 50, out=share)
    np.negative(share, out=share)
    np.exp(share, out=share)
    share += 1.0
    return np.divide(1.0, share, out=share)


def with_onset_prior(inputs: OracleInputs) -> OracleInputs:
    """The inputs with their onset law computed once, for calls of :func:`true_risk_at` at several dates."""
    p_max, ahead = onset_law(inputs.male, inputs.depr, inputs.ethnic_group, inputs.latent.morbidity)
    end = float(inputs.timeline.boundaries[-1])
    return replace(inputs, prior=OnsetPrior(p_max, ahead, _onset_share_by(end, inputs.birth_day, ahead)))


def oracle_subset(inputs: OracleInputs, people: np.ndarray) -> OracleInputs:
    """The inputs of some people only (positions ``people``), e.g. those alive and registered at T."""
    position = np.full(inputs.birth_day.size, -1)
    position[people] = np.arange(people.size)
    latent = inputs.latent
    spans = latent.episodes
    keep = position[spans.person] >= 0
    spell_person, *spell_rest = inputs.spells
    keep_spell = position[spell_person] >= 0
    return OracleInputs(
        timeline=inputs.timeline,
        birth_day=inputs.birth_day[people],
        male=inputs.male[people],
        depr=inputs.depr[people],
        ethnic_group=inputs.ethnic_group[people],
        latent=LatentPaths(
            onset_day=latent.onset_day[people],
            morbidity=latent.morbidity[people],
            propensity=latent.propensity[people],
            frequent_attender=latent.frequent_attender[people],
            fa_rate=latent.fa_rate[people],
            fa_months=latent.fa_months[people],
            episode=latent.episode[people],
            death_day=latent.death_day[people],
            fa_start=latent.fa_start[people],
            fa_length=latent.fa_length[people],
            episodes=EpisodeSpans(position[spans.person[keep]], spans.start[keep], spans.end[keep]),
        ),
        barrier=inputs.barrier[people],
        gp_reduction=inputs.gp_reduction,
        ae_substitution=inputs.ae_substitution,
        spells=(position[spell_person[keep_spell]], *(part[keep_spell] for part in spell_rest)),
        prior=None
        if inputs.prior is None
        else OnsetPrior(
            *(part[people] for part in (inputs.prior.p_max, inputs.prior.ahead, inputs.prior.reached_end))
        ),
    )


def window_weights(timeline: Timeline, as_of: int) -> np.ndarray:
    """:func:`integral_weights` from T+1 to the days the outcome windows need, shape (months, 2 * parts + 2).

    Columns: the parts' edges T+1 ... T+366, the parts' middles, then T+91.
    """
    edges = as_of + 1 + np.linspace(0, OUTCOME_DAYS, _PARTS + 1)
    middles = (edges[:-1] + edges[1:]) / 2
    weights = integral_weights(timeline, np.concatenate([edges, middles, [as_of + 91]]))
    # Integrals from T+1 (every use is a difference from it), so the months before it drop out.
    return weights - weights[:, :1]


_TOTAL_DAYS = [0, _PARTS, 2 * _PARTS + 1]
"""Columns of :func:`window_weights` at T+1, T+366 and T+91."""
_AE_DAYS = [0, *range(_PARTS + 1, 2 * _PARTS + 1), _PARTS]
"""Columns at T+1, each part's middle and T+366."""


def window_probabilities(
    emergency: np.ndarray,
    death: np.ndarray,
    ae: np.ndarray,
    timeline: Timeline,
    as_of: int,
    excess_year: np.ndarray,
    excess_90: np.ndarray,
) -> np.ndarray:
    """The three outcome probabilities given a whole path, shape (people, 3).

    Args:
        emergency: Emergency admission rate per month (``ServiceRates.emergency_admission``).
        death: Death hazard per month.
        ae: All A&E attendance rates per month (regular, frequent attender's, replacing GP care).
        timeline: The grid.
        as_of: T (day number).
        excess_year: Expected readmissions in 365 days from spells admitted by T.
        excess_90: The same in 90 days.

    Returns:
        Columns: emergency admission or death in 365 days, the same in 90 days, frequent attendance.
    """
    weights = window_weights(timeline, as_of)
    death_at = death @ weights
    survival = _survival_by_part(death_at)
    total_at = emergency @ weights[:, _TOTAL_DAYS] + death_at[:, _TOTAL_DAYS]
    return _probabilities(total_at, ae @ weights[:, _AE_DAYS], survival, excess_year, excess_90)


def _survival_by_part(death_at: np.ndarray) -> np.ndarray:
    """Chance of dying in each part of the year, then of surviving it, from the death integrals at the edges."""
    survival = death_at[:, : _PARTS + 1] - death_at[:, :1]
    np.negative(survival, out=survival)
    np.exp(survival, out=survival)
    survival[:, :-1] -= survival[:, 1:]
    return survival


def _probabilities(
    total_at: np.ndarray,
    ae_at: np.ndarray,
    survival: np.ndarray,
    excess_year: np.ndarray,
    excess_90: np.ndarray,
) -> np.ndarray:
    return np.stack(
        [
            emergency_admission_probability(total_at[:, 0], total_at[:, 1], excess_year),
            emergency_admission_probability(total_at[:, 0], total_at[:, 2], excess_90),
            frequent_attendance_probability(ae_at, survival),
        ],
        axis=1,
    )


_LATER = 1e9
"""Onset day standing for 'after the horizon' (finite: the person does get the condition)."""


@dataclass(frozen=True)
class _OnsetLaw:
    """Each not-yet-present condition's law after T, per person and condition.

    Attributes:
        known: Onset by T (the recorded day is kept).
        by_horizon: P(onset in (T, horizon] | none by T).
        ever: P(onset ever | none by T).
        reached: P(onset by T | ever), logistic in health age.
        reached_horizon: P(onset by the horizon | ever).
    """

    known: np.ndarray
    by_horizon: np.ndarray
    ever: np.ndarray
    reached: np.ndarray
    reached_horizon: np.ndarray


def _onset_law_after(
    onset_day: np.ndarray, birth_day: np.ndarray, prior: OnsetPrior, as_of: int
) -> _OnsetLaw:
    known = onset_day <= as_of
    p_max, reached = prior.p_max, _onset_share_by(as_of, birth_day, prior.ahead)
    left = 1 - p_max * reached
    by_horizon = prior.reached_end - reached
    by_horizon *= p_max
    by_horizon /= left
    by_horizon[known] = 0.0
    ever = 1 - reached
    ever *= p_max
    ever /= left
    ever[known] = 0.0
    return _OnsetLaw(known, by_horizon, ever, reached, prior.reached_end)


@dataclass(frozen=True)
class _FutureOnsets:
    """One draw of the onsets after T, kept sparse (few people get a condition within the horizon).

    Attributes:
        person: Person of each onset drawn within the horizon.
        condition: Its condition (column of ``CONDITIONS``).
        day: Its day (after T).
        fa_eligible: Whether each person has, or will ever have, a frequent-attender condition.
    """

    person: np.ndarray
    condition: np.ndarray
    day: np.ndarray
    fa_eligible: np.ndarray


def _future_onsets(
    birth_day: np.ndarray,
    ahead: np.ndarray,
    law: _OnsetLaw,
    as_of: int,
    rng: np.random.Generator,
) -> _FutureOnsets:
    """Onsets known by T kept; the rest redrawn from their law given no onset by T.

    One uniform per person and condition decides: onset by the horizon (day drawn
    from the law in between), later, or never. Only the onsets by the horizon are
    returned, with whether each person ever has a frequent-attender condition.
    """
    u = rng.random(law.known.shape)
    person, condition = np.nonzero(u < law.by_horizon)
    params = CONDITION_PARAMETERS
    a50 = params["a50"].to_numpy()[condition]
    spread = params["spread"].to_numpy()[condition]
    low, high = law.reached[person, condition], law.reached_horizon[person, condition]
    v = np.clip(low + (high - low) * rng.random(person.size), 1e-12, 1 - 1e-12)
    age = np.maximum(a50 + spread * np.log(v / (1 - v)) - ahead[person, condition], 0)
    day = np.maximum(birth_day[person] + age * DAYS_PER_YEAR, as_of + 1e-3)
    columns = FREQUENT_ATTENDER_COLUMNS
    eligible = (law.known[:, columns] | (u[:, columns] < law.ever[:, columns])).any(axis=1)
    return _FutureOnsets(person, condition, day, eligible)


@dataclass(frozen=True)
class _KnownAtT:
    """What the conditions with onset by T add in every month from T on, per person.

    Attributes:
        death_weight: Summed mortality weights.
        risk_weight: Summed emergency-risk weights.
        ltc: Number of conditions.
        deficits: Whether each eFI deficit is present, shape (people, deficits).
    """

    death_weight: np.ndarray
    risk_weight: np.ndarray
    ltc: np.ndarray
    deficits: np.ndarray


def _known_at(onset_day: np.ndarray, as_of: int) -> _KnownAtT:
    known = onset_day <= as_of
    params = CONDITION_PARAMETERS
    return _KnownAtT(
        death_weight=known @ params["death_weight"].to_numpy(),
        risk_weight=known @ params["risk_weight"].to_numpy(),
        ltc=known.sum(axis=1).astype(float),
        deficits=deficit_onsets(onset_day) <= as_of,
    )


@dataclass(frozen=True)
class _Presence:
    """Conditions present in each month of the grid for one draw of the future, shape (people, months).

    Attributes:
        death_burden: As ``presence_weight`` with the mortality weights.
        risk_burden: As ``presence_weight`` with the emergency-risk weights.
        ltc: Number of conditions present (None if not needed).
        frailty: Latent frailty index (as :func:`frailty_index`).
        frailty_middle: Latent frailty index in the whole timeline's middle month, per person.
    """

    death_burden: np.ndarray
    risk_burden: np.ndarray
    ltc: np.ndarray | None
    frailty: np.ndarray
    frailty_middle: np.ndarray

    def months(self, cover: slice) -> _Presence:
        """The same for some months of the grid only."""
        return _Presence(
            self.death_burden[:, cover],
            self.risk_burden[:, cover],
            None if self.ltc is None else self.ltc[:, cover],
            self.frailty[:, cover],
            self.frailty_middle,
        )


def _presence(
    known: _KnownAtT, future: _FutureOnsets, grid: Timeline, middle_end: float, count: bool
) -> _Presence:
    """What :func:`presence_weight` and :func:`frailty_index` give on the drawn path, from its sparse onsets.

    Onsets by T all count from the grid's first month; each drawn onset adds from its month on.
    ``middle_end`` is the first day after the timeline's middle month; ``count``: whether
    to count conditions (only GP care uses the count).
    """
    n, months = known.ltc.size, grid.months
    month = grid.month_of(future.day)
    inside = month < months
    params = CONDITION_PARAMETERS

    def by_month(
        base: np.ndarray, person: np.ndarray, month: np.ndarray, weights: np.ndarray | None
    ) -> np.ndarray:
        # Few people have an onset in the grid: accumulate their rows only.
        rows, row = np.unique(person, return_inverse=True)
        added = np.bincount(row * months + month, weights=weights, minlength=rows.size * months)
        result = np.repeat(base[:, None], months, axis=1)
        result[rows] += np.cumsum(added.reshape(rows.size, months), axis=1)
        return result

    onset_person, onset_month = future.person[inside], month[inside]

    condition = future.condition[inside]
    # A deficit not present at T starts at the earliest drawn onset of its conditions.
    deficit = DEFICIT_OF_CONDITION[future.condition]
    new = deficit >= 0
    new[new] = ~known.deficits[future.person[new], deficit[new]]
    key = future.person[new] * len(EFI_DEFICITS) + deficit[new]
    day = future.day[new]
    order = np.lexsort((day, key))
    key, day = key[order], day[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, day = key[first], day[first]
    person = key // len(EFI_DEFICITS)
    deficit_month = grid.month_of(day)
    in_grid = deficit_month < months
    known_deficits = known.deficits.sum(axis=1).astype(float)
    deficits = by_month(known_deficits, person[in_grid], deficit_month[in_grid], None)
    by_middle = np.bincount(person[day < middle_end], minlength=n)
    return _Presence(
        death_burden=by_month(
            known.death_weight, onset_person, onset_month, params["death_weight"].to_numpy()[condition]
        ),
        risk_burden=by_month(
            known.risk_weight, onset_person, onset_month, params["risk_weight"].to_numpy()[condition]
        ),
        ltc=by_month(known.ltc, onset_person, onset_month, None) if count else None,
        frailty=deficits / EFI_DENOMINATOR,
        frailty_middle=(known_deficits + by_middle) / EFI_DENOMINATOR,
    )


@dataclass(frozen=True)
class _AgeCurves:
    """The age part of every rate the oracle needs, shape (people, months); 0 before birth.

    Taken from the generator's own functions for a person with no condition, no
    frailty, average deprivation (0.5), propensity 1 and no episode or spell, so
    the oracle's rates (see :func:`_path_rates`) follow any change to the curves.
    """

    ae: np.ndarray
    direct: np.ndarray
    gp: np.ndarray
    admit_ae: np.ndarray
    admit_low: np.ndarray
    death: np.ndarray
    born: np.ndarray


def _age_curves(birth_day: np.ndarray, grid: Timeline) -> _AgeCurves:
    # Worked out once per day of birth (people share them), then spread to the people.
    days, person = np.unique(birth_day, return_inverse=True)
    age = age_at(days, grid)
    n = days.size
    none = np.full((n, len(CONDITION_PARAMETERS)), np.inf)
    zero, one, half = np.zeros(age.shape), np.ones(age.shape), np.full(n, 0.5)
    death = death_rate(age, none, zero, half, one, grid)
    # Everyone behind the access barrier losing all GP care, one A&E visit each: ae_sub = the GP curve.
    rates = service_rates(
        age, none, zero, half, np.ones(n), one, np.zeros(n), np.zeros(age.shape, bool), death,
        np.ones(n, bool), 1.0, 1.0, grid,
    )  # fmt: skip
    curves = (rates.ae, rates.direct, rates.ae_sub, rates.admit_ae, rates.admit_low, death, age >= 0)
    return _AgeCurves(*(curve[person] for curve in curves))


@dataclass(frozen=True)
class _PathRates:
    """The rates on one drawn path that do not depend on the frequent attender's extra visits.

    Each is as ``service_rates`` (or ``death_rate``) gives it, shape (people, months);
    ``ae_sub`` is None when nobody faces the access barrier (no visits replace GP care).
    """

    ae: np.ndarray
    ae_sub: np.ndarray | None
    direct: np.ndarray
    death: np.ndarray
    admit_ae: np.ndarray
    admit_low: np.ndarray

    def window_pair(
        self,
        ae_fa: np.ndarray,
        extra: np.ndarray,
        weights: np.ndarray,
        excess_year: np.ndarray,
        excess_90: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`window_probabilities` given the extra visits ``ae_fa``, and with ``extra`` more of them.

        ``weights`` are :func:`window_weights`; the death integrals are shared, the rest added up.
        """
        ae = self.ae + ae_fa
        low = ae_fa
        if self.ae_sub is not None:
            ae, low = ae + self.ae_sub, ae_fa + self.ae_sub
        emergency = self.ae * self.admit_ae + low * self.admit_low + self.direct
        death_at = self.death @ weights
        survival = _survival_by_part(death_at)
        total_at = emergency @ weights[:, _TOTAL_DAYS] + death_at[:, _TOTAL_DAYS]
        ae_at = ae @ weights[:, _AE_DAYS]
        without = _probabilities(total_at, ae_at, survival, excess_year, excess_90)
        total_at += (extra * self.admit_low) @ weights[:, _TOTAL_DAYS]
        ae_at += extra @ weights[:, _AE_DAYS]
        return without, _probabilities(total_at, ae_at, survival, excess_year, excess_90)


def _path_rates(
    curves: _AgeCurves,
    presence: _Presence,
    depr: np.ndarray,
    propensity: np.ndarray,
    episode: np.ndarray,
    barrier: np.ndarray,
    gp_reduction: float,
    ae_substitution: float,
) -> _PathRates:
    """The rates on one drawn path, computed as ``service_rates`` and ``death_rate`` do (same formulas)."""
    depr_term = depr[:, None] - 0.5
    risk = 0.55 * np.minimum(presence.risk_burden, 2.5)
    risk += 1.5 * presence.frailty
    risk += 0.75 * depr_term
    np.exp(risk, out=risk)
    risk = risk * propensity[:, None]
    risk *= episode
    ae_sub = None
    if barrier.any():
        gp_full = (
            curves.gp * (1 + 0.25 * np.minimum(presence.ltc, 8)) * np.sqrt(propensity[:, None] * episode)
        )
        ae_sub = np.where(barrier[:, None], gp_full * gp_reduction, 0.0) * ae_substitution
    burden = 0.6 * np.minimum(presence.death_burden, 3.0)
    burden += 2.0 * presence.frailty
    burden += 0.6 * depr_term
    death = curves.death * np.exp(burden, out=burden)
    death *= np.sqrt(episode)
    return _PathRates(
        ae=curves.ae * risk,
        ae_sub=ae_sub,
        direct=curves.direct * risk,
        death=death,
        admit_ae=curves.admit_ae,
        admit_low=curves.admit_low,
    )


def _resampled_lengths(
    start: np.ndarray, as_of_month: int, shortest: int, longest: int, rng: np.random.Generator
) -> np.ndarray:
    """Lengths (months) of spans under way in the as-of month, given they lasted to it (uniform law)."""
    low = np.clip(as_of_month - start + 1, shortest, longest)
    return rng.integers(low, longest + 1)


def true_risk_at(
    inputs: OracleInputs, as_of: int, rng: np.random.Generator, draws: int = TRUTH_DRAWS
) -> np.ndarray:
    """Each person's true outcome probabilities given the latent state at T, shape (people, 3).

    The state at T is everything that has happened by T: conditions with onset by T,
    the frequent-attender spell if it has started, decline episodes that have
    started, past emergency spells, and the fixed traits (age, sex, deprivation,
    propensity, morbidity). What happens after T is integrated out, using the
    generator's own laws: onsets are redrawn given no onset by T; spells and
    episodes under way at T get a length given they lasted to T; new episodes
    start at the person's episode rate; and a spell that has not started by T may
    start in the window, with the chance the generator's law gives (weighted by
    the chance of being a frequent attender given none has started by T). The
    chance of a spell starting in the window is applied exactly (not sampled);
    onsets, episodes, lengths and the new spell's month and rate are averaged
    over ``draws`` Monte Carlo draws of the future, with self-normalised weights
    for what the state at T says about the future (a frequent attender is more
    likely to get an eligible condition later; past episodes tell about the
    episode rate, which depends on frailty in the grid's middle month).

    Everything that does not depend on the draw (age curves, what is known at T)
    is computed once; each draw adds only its few onsets after T.

    Columns: emergency admission or death in 365 days, the same in 90 days,
    frequent attendance (>= 5 A&E attendances in 365 days).
    """
    # The window integrals are small matrix products, where BLAS threads only spin.
    with threadpool_limits(limits=1, user_api="blas"):
        return _true_risk_at(inputs, as_of, rng, draws)


def _true_risk_at(inputs: OracleInputs, as_of: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    tl, latent = inputs.timeline, inputs.latent
    n, months = inputs.birth_day.size, tl.months
    as_of_month = int(tl.month_of(np.array([as_of]))[0])
    window_end_month = int(tl.month_of(np.array([as_of + OUTCOME_DAYS]))[0])
    last = min(int(tl.month_of(np.array([as_of + OUTCOME_DAYS + 1]))[0]) + 1, months)
    grid = Timeline(tl.boundaries[as_of_month : last + 1], tl.history_start, tl.extract_day)
    grid_month = np.arange(as_of_month, last)
    middle = months // 2
    middle_grid = Timeline(tl.boundaries[middle : middle + 2], tl.history_start, tl.extract_day)
    age_middle = (tl.month_middle[middle] - inputs.birth_day) / DAYS_PER_YEAR
    prior = (inputs if inputs.prior is not None else with_onset_prior(inputs)).prior
    ahead = prior.ahead
    # Onsets matter to the end of the timeline (the window, and frailty in the middle month).
    law = _onset_law_after(latent.onset_day, inputs.birth_day, prior, as_of)
    known = _known_at(latent.onset_day, as_of)
    excess_year = readmission_excess(*inputs.spells, n, as_of, OUTCOME_DAYS)
    excess_90 = readmission_excess(*inputs.spells, n, as_of, 90)
    # The frequent-attender spell: under way or over by T (known), or not started (maybe later).
    started = latent.frequent_attender & (latent.fa_start <= as_of_month)
    under_way = np.flatnonzero(started & (latent.fa_start + latent.fa_length > as_of_month))
    fa_start = latent.fa_start[under_way]
    starts_after = (months - 1 - as_of_month) / (months - FA_FIRST_START)
    starts_in_window = (window_end_month - as_of_month) / max(months - 1 - as_of_month, 1)
    # Episodes started by T: their number informs the episode rate; those under way continue.
    spans = latent.episodes
    past = spans.start <= as_of_month
    past_count = np.bincount(spans.person[past], minlength=n)
    open_spans = np.flatnonzero(past & (spans.end > as_of_month))
    open_start = spans.start[open_spans]
    weights = window_weights(grid, as_of)
    # Rates are needed only in the months the windows cover (for a month-end T, neither T's month nor the last).
    used = np.flatnonzero(weights.any(axis=1))
    cover = slice(int(used[0]), int(used[-1]) + 1)
    weights, cover_month = weights[cover], grid_month[cover]
    cover_grid = Timeline(grid.boundaries[cover.start : cover.stop + 1], tl.history_start, tl.extract_day)
    curves = _age_curves(inputs.birth_day, cover_grid)

    # From the middle month on, the episode rate is known at T (it depends on frailty then).
    known_rate = episode_rate(age_middle, frailty_index(latent.onset_day, middle_grid)[:, 0]) / 12
    log_weight = np.empty((draws, n))
    probability = np.empty((draws, n, 3))
    for k in range(draws):
        future = _future_onsets(inputs.birth_day, ahead, law, as_of, rng)
        presence = _presence(known, future, grid, float(tl.boundaries[middle + 1]), inputs.barrier.any())
        rate = known_rate  # starts per month
        if as_of_month < middle:
            rate = episode_rate(age_middle, presence.frailty_middle) / 12
        log_weight[k] = past_count * np.log(np.maximum(rate, 1e-300)) - rate * (as_of_month + 1)
        lengths = _resampled_lengths(open_start, as_of_month, *EPISODE_LENGTHS, rng)
        new = rng.poisson(rate[:, None], (n, grid.months - 1))
        new_person, new_month = np.nonzero(new)
        repeat = new[new_person, new_month]
        new_person, new_month = np.repeat(new_person, repeat), np.repeat(new_month, repeat) + as_of_month + 1
        new_end = new_month + rng.integers(EPISODE_LENGTHS[0], EPISODE_LENGTHS[1] + 1, new_month.size)
        episodes = EpisodeSpans(
            np.concatenate([spans.person[open_spans], new_person]),
            np.concatenate([open_start, new_month]),
            np.minimum(np.concatenate([open_start + lengths, new_end]), months),
        )
        episode = episode_multiplier(episodes, n, grid.months, first_month=as_of_month)
        fa_end = fa_start + _resampled_lengths(fa_start, as_of_month, *FA_LENGTHS, rng)
        ae_fa = np.zeros((n, cover_grid.months))
        ae_fa[under_way] = np.where(
            (cover_month[None, :] < fa_end[:, None]) & curves.born[under_way],
            latent.fa_rate[under_way, None],
            0.0,
        )
        path = _path_rates(
            curves, presence.months(cover), inputs.depr, latent.propensity, episode[:, cover], inputs.barrier,
            inputs.gp_reduction, inputs.ae_substitution,
        )  # fmt: skip
        # A spell not started by T starts in the window with chance q (exact), in a drawn month at a drawn rate.
        share = frequent_attender_share_given(future.fa_eligible)
        q = share * starts_after / (share * starts_after + 1 - share) * starts_in_window
        q = np.where(started, 0.0, q)
        spell_start = rng.integers(as_of_month + 1, window_end_month + 1, n)
        spell_end = spell_start + rng.integers(FA_LENGTHS[0], FA_LENGTHS[1] + 1, n)
        spell = (cover_month[None, :] >= spell_start[:, None]) & (cover_month[None, :] < spell_end[:, None])
        spell &= curves.born
        extra = spell * rng.lognormal(*FA_RATE_LOGNORMAL, n)[:, None]  # the drawn rate in the spell, else 0
        without, with_spell = path.window_pair(ae_fa, extra, weights, excess_year, excess_90)
        probability[k] = (1 - q[:, None]) * without + q[:, None] * with_spell
        log_weight[k] += np.where(started, np.log(share), np.log(1 - share + share * starts_after))
    weight = np.exp(log_weight - log_weight.max(axis=0, keepdims=True))
    return np.einsum("kn,knj->nj", weight, probability) / weight.sum(axis=0)[:, None]
