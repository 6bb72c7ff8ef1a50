"""A small synthetic stacked training table with a known (non-linear) logistic truth, for model tests."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from riskstrat.models.settings import ModelSettings

AS_OF_DATES = [date(2022, 12, 31), date(2023, 6, 30), date(2023, 12, 31), date(2024, 12, 31)]
FEATURES = [
    "age",
    "sex_female",
    "imd_decile",
    "care_home",
    "ltc_count",
    "efi_score",
    "emergency_admissions_365d",
    "ae_attendances_365d",
    "gp_appointments_90d",
    "days_since_last_discharge",
]


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def make_training_table(n_persons: int = 20_000, seed: int = 7) -> pd.DataFrame:
    """Person-time rows at four as-of dates; outcomes drawn from a known logistic truth."""
    rng = np.random.default_rng(seed)
    person_id = np.array([f"P{i:07d}" for i in range(n_persons)])
    frailty = rng.normal(size=n_persons)
    age0 = rng.integers(18, 95, size=n_persons)
    female = rng.integers(0, 2, size=n_persons)
    imd_decile = rng.integers(1, 11, size=n_persons)
    frames = []
    for k, as_of in enumerate(AS_OF_DATES):
        age = age0 + k // 2
        h = frailty + 0.03 * (age - 60) + rng.normal(scale=0.3, size=n_persons)
        ltc = rng.poisson(np.exp(0.2 + 0.4 * h).clip(0, 8))
        efi = np.clip(0.1 + 0.06 * h + rng.normal(scale=0.03, size=n_persons), 0, 1)
        adm = rng.poisson(np.exp(-1.8 + 0.7 * h))
        ae = rng.poisson(np.exp(-0.8 + 0.5 * h + 0.05 * (10 - imd_decile)))
        gp = rng.poisson(np.exp(0.5 + 0.3 * h))
        care_home = (rng.random(n_persons) < _logistic(-5 + 1.0 * h)).astype(int)
        dsld = np.where(adm > 0, rng.integers(1, 365, size=n_persons), np.nan)
        # Non-linear truth (thresholds, interactions) that a linear model cannot fully capture.
        old_and_admitted = (age >= 70) & (adm >= 2)
        eta_ea = (
            -2.7
            + 0.0015 * (age - 55) ** 2
            - 1.0
            + 0.5 * np.minimum(adm, 3)
            + 1.6 * old_and_admitted
            + 2.0 * (efi > 0.2) * (ltc >= 2)
            + 0.1 * ltc
            - 0.04 * imd_decile
            + 0.6 * care_home
            + 0.6 * (np.nan_to_num(dsld, nan=999) < 60)
        )
        eta_fa = -3.6 + 1.2 * (ae >= 2) + 2.0 * (ae >= 3) * (imd_decile <= 4) + 0.3 * adm + 1.0 * (efi > 0.22)
        p_ea, p_fa = _logistic(eta_ea), _logistic(eta_fa)
        frames.append(
            pd.DataFrame(
                {
                    "person_id": person_id,
                    "as_of": as_of,
                    "age": age.astype(int),
                    "sex_female": female,
                    "imd_decile": imd_decile,
                    "care_home": care_home,
                    "ltc_count": ltc,
                    "efi_score": efi,
                    "emergency_admissions_365d": adm,
                    "ae_attendances_365d": ae,
                    "gp_appointments_90d": gp,
                    "days_since_last_discharge": dsld,
                    "emergency_admission": rng.binomial(1, p_ea),
                    "frequent_attendance": rng.binomial(1, p_fa),
                    "on_caseload_in_window": (rng.random(n_persons) < 0.05).astype(int),
                    "ethnic_group": rng.choice(["White", "Asian", "Black", "Mixed", "Other"], n_persons),
                    "imd_quintile": (imd_decile + 1) // 2,
                    "practice_code": rng.choice(["A00001", "A00002", "A00003"], n_persons),
                    "p_emergency_admission": p_ea,
                    "p_frequent_attendance": p_fa,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def fast_settings(**overrides) -> ModelSettings:
    """Settings with few boosting rounds and bootstrap resamples, for quick tests."""
    data = {
        "lightgbm": {
            outcome: {"learning_rate": 0.1, "n_estimators": 300, "early_stopping_rounds": 20}
            for outcome in ("emergency_admission", "frequent_attendance")
        },
        "evaluation": {"n_boot": 50},
        "promotion": {"calibration_slope_bounds": [0.7, 1.3], "oe_bounds": [0.8, 1.25]},
    }
    data.update(overrides)
    return ModelSettings.model_validate(data)
