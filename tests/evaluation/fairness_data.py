"""Synthetic test-row predictions and list selections for the fairness audit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.worklists.backtest import back_test_lists
from riskstrat.worklists.settings import ExclusionSettings, Mdt, RiskBandSettings

ETHNIC_SHARES = {
    "White": 0.70,
    "Asian": 0.12,
    "Black": 0.08,
    "Mixed": 0.03,
    "Other": 0.02,
    "Not known / Not stated": 0.05,
}
AGE_BANDS = ("18-29", "30-44", "45-64", "65-74", "75-84", "85+")


def synthetic_predictions(
    n: int = 20_000,
    seed: int = 7,
    under_recorded: str | None = None,
    under_recording_logit: float = 1.0,
) -> pd.DataFrame:
    """Test rows where y ~ Bernoulli(true risk); the model's p equals the true risk.

    With ``under_recorded`` set, that ethnic group's GP diagnoses are under-recorded:
    the model's p is too low for them (true logit minus ``under_recording_logit``),
    and their recorded long-term conditions are fewer, while hospital-recorded need
    (admissions, bed days) follows their true, higher risk - so at equal predicted
    risk they are sicker.
    """
    rng = np.random.default_rng(seed)
    ethnic = rng.choice(list(ETHNIC_SHARES), size=n, p=list(ETHNIC_SHARES.values()))
    imd = rng.integers(1, 6, size=n)
    age_index = rng.choice(len(AGE_BANDS), size=n, p=[0.15, 0.22, 0.3, 0.15, 0.12, 0.06])
    sex = rng.choice(["1", "2"], size=n)
    frailty = rng.normal(0, 1, size=n)
    true_logit = -3.2 + 0.45 * age_index + 0.15 * (5 - imd) + 0.8 * frailty
    p_true = expit(true_logit)
    y = rng.binomial(1, p_true)
    p_model = p_true.copy()
    ltc_rate = np.exp(0.2 + 0.25 * age_index + 0.35 * frailty)
    ltc = rng.poisson(ltc_rate)
    if under_recorded:
        hit = ethnic == under_recorded
        p_model[hit] = expit(logit(p_true[hit]) - under_recording_logit)
        ltc[hit] = rng.binomial(ltc[hit], 0.6)
    admissions = y * (1 + rng.poisson(2 * p_true))
    bed_days = admissions * rng.poisson(4, size=n)
    efi = np.clip(rng.normal(0.05 + 0.04 * age_index + 0.03 * frailty, 0.03), 0, 1)
    return pd.DataFrame(
        {
            "person_id": [f"P{i:06d}" for i in range(n)],
            "as_of": pd.Timestamp("2024-12-31").date(),
            "y": y,
            "p": p_model,
            "ethnic_group": ethnic,
            "imd_quintile": imd,
            "sex": sex,
            "age_band": np.array(AGE_BANDS)[age_index],
            "mdt": rng.choice(["North", "South"], size=n),
            "ltc_count": ltc,
            "efi_score": efi,
            "emergency_admissions_next_year": admissions,
            "bed_days_next_year": bed_days,
        }
    )


def synthetic_selections(predictions: pd.DataFrame, capacity_share: float = 0.05) -> pd.DataFrame:
    """Each MDT lists its highest-risk ``capacity_share``, drawn up by the weekly selector.

    Each MDT covers the practices of its rows (without ``practice_code``, one practice named
    after it); everyone is an adult.
    """
    practice = predictions["practice_code"] if "practice_code" in predictions else predictions["mdt"]
    rows = predictions.assign(practice_code=practice, age=50.0, outcome=predictions["y"])
    mdts = [
        Mdt(
            name=name,
            practices=tuple(sorted(rows.loc[rows["mdt"] == name, "practice_code"].unique())),
            outcome="outcome",
            min_age=18,
            capacity_people=None,
            capacity_share=capacity_share,
            exclusions=ExclusionSettings(),
        )
        for name in sorted(rows["mdt"].unique())
    ]
    _, selections = back_test_lists(
        rows, predictions["p"], "outcome", mdts, RiskBandSettings(), 0.2, capacity_share
    )
    return selections


def fast_settings(**overrides: object) -> FairnessSettings:
    """Settings with a small bootstrap, so tests stay quick."""
    values: dict[str, object] = {"bootstrap_n": 60}
    values.update(overrides)
    return FairnessSettings(**values)
