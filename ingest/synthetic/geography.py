"""Where synthetic people live, how old they are and who they are.

People are drawn onto the real LSOAs of the footprint in proportion to each
LSOA's population in each broad age band (IoD 2019 denominators), so the
deprivation they carry is real.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.ingest.reference import imd_lookup
from riskstrat.ingest.synthetic.settings import KNOWN_GROUPS, SyntheticSettings

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("population_0_15", 0, 16),
    ("population_16_59", 16, 60),
    ("population_60_plus", 60, 101),
)

# Relative numbers alive at each single year of age 60..100 (roughly England's
# 2020 age structure): flat to the late 60s, then falling ever faster.
_OLD_AGE_WEIGHTS = np.interp(
    np.arange(60, 101),
    [60, 65, 70, 75, 80, 85, 90, 95, 100],
    [1.0, 0.93, 0.86, 0.74, 0.52, 0.34, 0.16, 0.05, 0.008],
)

# Within-group split of ETHNIC CATEGORY codes (approximate, West Midlands 2021).
CODES_BY_GROUP: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "White": (("A", "B", "C"), (0.90, 0.02, 0.08)),
    "Asian": (("H", "J", "K", "L", "R"), (0.42, 0.33, 0.08, 0.14, 0.03)),
    "Black": (("M", "N", "P"), (0.35, 0.55, 0.10)),
    "Mixed": (("D", "E", "F", "G"), (0.40, 0.10, 0.25, 0.25)),
    "Other": (("S",), (1.0,)),
}

# Minority groups are over-represented in deprived LSOAs: log-odds tilt per unit of deprivation.
_DEPRIVATION_TILT = {"White": -0.4, "Asian": 0.8, "Black": 0.7, "Mixed": 0.3, "Other": 0.5}


def footprint_lsoas(settings: SyntheticSettings) -> pd.DataFrame:
    """The LSOAs of the footprint's districts with IMD and population.

    Raises:
        RiskstratError: If a LAD code matches no English LSOA.
    """
    imd = imd_lookup()
    lsoas = imd[imd["lad_code"].isin(settings.lad_codes)].sort_values("lsoa_code").reset_index(drop=True)
    missing = sorted(set(settings.lad_codes) - set(lsoas["lad_code"]))
    if missing:
        raise RiskstratError(
            f"synthetic.yaml lad_codes: no LSOAs found for {', '.join(missing)}",
            hint="Use LAD 2019 codes of English districts, e.g. E08000027 (Dudley).",
        )
    lsoas["msoa_name"] = lsoas["lsoa_name"].str[:-1].str.strip()
    return lsoas


def deprivation(imd_decile: np.ndarray) -> np.ndarray:
    """Deprivation on a 0 (least deprived decile) to 1 (most deprived decile) scale."""
    return (10 - np.asarray(imd_decile, dtype=float)) / 9.0


def sample_residents(lsoas: pd.DataFrame, people: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw people's LSOA and age (at the middle of the history) from real populations.

    Args:
        lsoas: Output of :func:`footprint_lsoas`.
        people: How many people to draw.
        rng: Random generator.

    Returns:
        ``lsoa_index`` (row of ``lsoas``) and ``age`` (years, fractional), one row per person.
    """
    counts = lsoas[[band for band, _, _ in AGE_BANDS]].to_numpy(dtype=float)
    cell = rng.choice(counts.size, size=people, p=(counts / counts.sum()).ravel())
    lsoa_index, band = np.divmod(cell, len(AGE_BANDS))
    age = np.empty(people)
    for b, (_, low, high) in enumerate(AGE_BANDS):
        in_band = band == b
        if low == 60:
            weights = _OLD_AGE_WEIGHTS / _OLD_AGE_WEIGHTS.sum()
            age[in_band] = rng.choice(np.arange(60, 101), size=in_band.sum(), p=weights)
        else:
            age[in_band] = rng.integers(low, high, size=in_band.sum())
    age += rng.random(people)
    return pd.DataFrame({"lsoa_index": lsoa_index, "age": age})


def sample_sex(age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PERSON STATED GENDER CODE: women outnumber men more with age; a few 'X'."""
    p_female = 0.49 + 0.22 * np.clip((age - 60) / 40, 0, 1)
    sex = np.where(rng.random(age.size) < p_female, "2", "1").astype(object)
    sex[rng.random(age.size) < 0.0005] = "X"
    return sex


def sample_ethnic_group(
    lad_code: np.ndarray, depr: np.ndarray, settings: SyntheticSettings, rng: np.random.Generator
) -> np.ndarray:
    """True 2021-census ethnic group from the district mix, tilted towards deprived LSOAs.

    Args:
        lad_code: Each person's district.
        depr: Each person's deprivation (0-1).
        settings: Holds the approximate census shares.
        rng: Random generator.

    Returns:
        One of Asian, Black, Mixed, White, Other per person.
    """
    groups = np.array(KNOWN_GROUPS, dtype=object)
    base = _mix_by_lad(lad_code, settings)
    tilt = np.array([_DEPRIVATION_TILT[g] for g in KNOWN_GROUPS])
    weights = base * np.exp(np.outer(depr - 0.5, tilt))
    weights /= weights.sum(axis=1, keepdims=True)
    choice = (rng.random(len(depr))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    return groups[np.minimum(choice, len(groups) - 1)]


def _mix_by_lad(lad_code: np.ndarray, settings: SyntheticSettings) -> np.ndarray:
    lads, inverse = np.unique(lad_code, return_inverse=True)
    table = np.array(
        [
            [settings.ethnic_mix.get(lad, settings.ethnic_mix["default"])[g] for g in KNOWN_GROUPS]
            for lad in lads
        ]
    )
    return table[inverse]


def record_ethnic_category(
    group: np.ndarray, settings: SyntheticSettings, rng: np.random.Generator
) -> np.ndarray:
    """The ETHNIC CATEGORY code the GP record holds: a code of the true group, or missing/Z/99.

    Args:
        group: True census group per person.
        settings: Holds each group's share not recorded.
        rng: Random generator.

    Returns:
        Code per person, None where missing.
    """
    codes = np.empty(group.size, dtype=object)
    for name, (group_codes, shares) in CODES_BY_GROUP.items():
        members = group == name
        codes[members] = rng.choice(np.array(group_codes, dtype=object), size=members.sum(), p=shares)
    p_missing = np.array([settings.ethnicity_not_recorded[g] for g in KNOWN_GROUPS])[_group_index(group)]
    missing = rng.random(group.size) < p_missing
    kind = rng.random(group.size)
    codes[missing & (kind < 0.4)] = None
    codes[missing & (kind >= 0.4) & (kind < 0.7)] = "Z"
    codes[missing & (kind >= 0.7)] = "99"
    return codes


def _group_index(group: np.ndarray) -> np.ndarray:
    lookup = {g: i for i, g in enumerate(KNOWN_GROUPS)}
    return pd.Series(group).map(lookup).to_numpy(dtype=int)
