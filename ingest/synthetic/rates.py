"""Monthly service rates as functions of the latent path.

All rates are per person per year and constant within a month. Emergency
admissions come from three A&E streams thinned by the chance of admission
(regular attendances, a frequent attender's extra visits, and visits that
replace GP appointments under the access-barrier scenario) plus direct
(GP-referred and other non-A&E) emergency admissions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskstrat.ingest.synthetic.health import CONDITION_PARAMETERS, CONDITIONS, presence_weight
from riskstrat.ingest.synthetic.timeline import Timeline

# Annual A&E attendances and direct emergency admissions for a person of
# average risk, by age (interpolated between the knots).
_AGE_KNOTS = np.array([0, 1, 5, 15, 20, 30, 45, 65, 75, 85, 95, 105])
_AE_BASE = np.array([0.62, 0.47, 0.25, 0.27, 0.31, 0.27, 0.22, 0.17, 0.15, 0.155, 0.17, 0.17])
_DIRECT_BASE = np.array([0.062, 0.033, 0.013, 0.013, 0.012, 0.011, 0.011, 0.012, 0.013, 0.016, 0.020, 0.020])
_GP_BASE = np.array([6.0, 4.0, 2.0, 2.0, 3.0, 3.5, 3.8, 4.5, 5.0, 5.5, 6.0, 6.0])
_ELECTIVE_BASE = np.array([0.01, 0.01, 0.02, 0.02, 0.03, 0.04, 0.07, 0.14, 0.18, 0.15, 0.08, 0.05])

# Acuity 1..5 mix for the young (<= 20) and the old (>= 90); mixed linearly between.
ACUITY_YOUNG = np.array([0.004, 0.06, 0.40, 0.40, 0.136])
ACUITY_OLD = np.array([0.02, 0.24, 0.56, 0.15, 0.03])
ACUITY_LOW = np.array([0.0, 0.0, 0.05, 0.55, 0.40])
"""Acuity of frequent attenders' extra visits and of visits replacing GP care."""
ADMIT_BY_ACUITY = np.array([0.75, 0.50, 0.215, 0.05, 0.014])


@dataclass
class ServiceRates:
    """Monthly annual rates for one chunk of people, each of shape (people, months).

    Attributes:
        ae: Regular A&E attendances.
        ae_fa: Frequent attenders' extra A&E attendances.
        ae_sub: A&E attendances replacing GP appointments (access-barrier scenario).
        admit_ae: Mean chance a regular attendance is admitted (thinning probability).
        admit_low: Mean chance a low-acuity (extra or replacing) attendance is admitted.
        direct: Direct (not via A&E) emergency admissions.
        death: Death hazard.
        gp: GP appointments.
        elective: Elective admissions.
        risk: The emergency risk multiplier (used for secondary services).
    """

    ae: np.ndarray
    ae_fa: np.ndarray
    ae_sub: np.ndarray
    admit_ae: np.ndarray
    admit_low: np.ndarray
    direct: np.ndarray
    death: np.ndarray
    gp: np.ndarray
    elective: np.ndarray
    risk: np.ndarray

    @property
    def emergency_admission(self) -> np.ndarray:
        """Total emergency admission rate (excluding post-discharge readmission excess)."""
        return self.ae * self.admit_ae + (self.ae_fa + self.ae_sub) * self.admit_low + self.direct


def by_age(age: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Interpolate an age curve given at the knots."""
    return np.interp(np.clip(age, 0, 105), _AGE_KNOTS, values)


def acuity_mix(age: np.ndarray) -> np.ndarray:
    """Acuity probabilities (last axis 1..5) by age."""
    w = np.clip((age - 20) / 70, 0, 1)[..., None]
    return (1 - w) * ACUITY_YOUNG + w * ACUITY_OLD


def admit_probability(age: np.ndarray, acuity: np.ndarray) -> np.ndarray:
    """Chance an attendance is admitted, rising with acuity (1 highest) and age."""
    factor = np.clip(0.45 + 0.013 * np.clip(age, 0, 105), 0.45, 1.7)
    return np.minimum(ADMIT_BY_ACUITY[acuity - 1] * factor, 0.95)


def mean_admit_probability(age: np.ndarray, mix: np.ndarray | None = None) -> np.ndarray:
    """Chance of admission averaged over the acuity mix at each age.

    Exact at every 0.05 year of age, linear in between (the curve is smooth).
    """
    grid = np.arange(0, 105.05, 0.05)
    table = acuity_mix(grid) if mix is None else np.broadcast_to(mix, (grid.size, 5))
    factor = np.clip(0.45 + 0.013 * grid, 0.45, 1.7)[:, None]
    curve = (table * np.minimum(ADMIT_BY_ACUITY * factor, 0.95)).sum(axis=-1)
    return np.interp(np.clip(age, 0, 105), grid, curve)


def service_rates(
    age: np.ndarray,
    onset_day: np.ndarray,
    frailty: np.ndarray,
    depr: np.ndarray,
    propensity: np.ndarray,
    episode: np.ndarray,
    fa_rate: np.ndarray,
    fa_months: np.ndarray,
    death: np.ndarray,
    barrier: np.ndarray,
    gp_reduction: float,
    ae_substitution: float,
    timeline: Timeline,
) -> ServiceRates:
    """Every service's monthly rate from the latent path.

    Args:
        age: Age at each month.
        onset_day: Condition onsets.
        frailty: Latent frailty index per month.
        depr: Deprivation 0-1 per person.
        propensity: Persistent propensity per person.
        episode: Decline-episode multiplier per month.
        fa_rate: Frequent attenders' extra visits per year.
        fa_months: Months of the frequent-attender spell.
        death: Death hazard per month.
        barrier: Whether each person faces the access barrier.
        gp_reduction: Share of GP appointments the barrier removes.
        ae_substitution: A&E visits per lost GP appointment.
        timeline: The monthly grid.

    Returns:
        The rates.
    """
    weights = CONDITION_PARAMETERS["risk_weight"].to_numpy()
    burden = presence_weight(onset_day, weights, timeline)
    ltc = presence_weight(onset_day, np.ones(len(CONDITIONS)), timeline)
    risk = (
        np.exp(0.55 * np.minimum(burden, 2.5) + 1.5 * frailty + 0.75 * (depr[:, None] - 0.5))
        * propensity[:, None]
        * episode
    )
    born = age >= 0
    ae = np.where(born, by_age(age, _AE_BASE) * risk, 0.0)
    direct = np.where(born, by_age(age, _DIRECT_BASE) * risk, 0.0)
    gp_full = np.where(
        born,
        by_age(age, _GP_BASE) * (1 + 0.25 * np.minimum(ltc, 8)) * np.sqrt(propensity[:, None] * episode),
        0.0,
    )
    lost = np.where(barrier[:, None], gp_full * gp_reduction, 0.0)
    elective = np.where(born, by_age(age, _ELECTIVE_BASE) * (1 + 0.15 * np.minimum(ltc, 6)), 0.0)
    return ServiceRates(
        ae=ae,
        ae_fa=np.where(fa_months & born, fa_rate[:, None], 0.0),
        ae_sub=lost * ae_substitution,
        admit_ae=mean_admit_probability(age),
        admit_low=mean_admit_probability(age, ACUITY_LOW),
        direct=direct,
        death=death,
        gp=gp_full - lost,
        elective=elective,
        risk=risk,
    )


def readmission_hazard(age: np.ndarray, frailty: np.ndarray) -> np.ndarray:
    """Excess emergency readmission hazard per year over the 30 days after an emergency discharge."""
    p30 = np.clip(0.05 + 0.0012 * np.clip(age - 40, 0, None) + 0.2 * frailty, 0.0, 0.35)
    return -np.log1p(-p30) * 365.25 / 30.0
