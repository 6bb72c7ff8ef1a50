"""The population groups the fairness audit compares.

Every grouping lists all of its groups, in a fixed order, whether or not anyone
in the data falls in them: a group too small to judge is reported as
"insufficient data", never dropped, so the board sees who the audit cannot speak for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.ingest.reference import CENSUS_GROUPS, NOT_KNOWN_GROUP

INSUFFICIENT = "insufficient data"
"""Status of a cell too small to judge (it is still shown)."""

IMD_NOT_KNOWN = "Not known"
"""IMD quintile of a person whose LSOA has no IMD 2019 score (e.g. Welsh, or missing)."""

IMD_LABELS = {
    "1": "1 - most deprived 20% (Core20)",
    "2": "2",
    "3": "3",
    "4": "4",
    "5": "5 - least deprived 20%",
    IMD_NOT_KNOWN: "Not known",
}
"""Plain labels of the IMD quintiles (quintile 1 = most deprived 20%)."""

SEX_LABELS = {"1": "Male", "2": "Female", "9": "Indeterminate", "X": "Not known"}
"""PERSON STATED GENDER CODE values and their labels."""

_SEX_ALIASES = {
    "1": "Male",
    "m": "Male",
    "male": "Male",
    "2": "Female",
    "f": "Female",
    "female": "Female",
    "9": "Indeterminate",
    "indeterminate": "Indeterminate",
    "x": "Not known",
    "0": "Not known",
    "not known": "Not known",
    "unknown": "Not known",
}
SEX_GROUPS = ("Female", "Male", "Indeterminate", "Not known")


@dataclass(frozen=True)
class Grouping:
    """One way of dividing the population.

    Attributes:
        name: Column the group values are written to (also the grouping's id in flags).
        label: Plain-English name for the report.
        groups: Every group, in report order (groups absent from the data included).
    """

    name: str
    label: str
    groups: tuple[str, ...]


def _imd_group(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.notna() & ~numeric.isin([1, 2, 3, 4, 5])
    if bad.any():
        raise RiskstratError(
            f"imd_quintile: {int(bad.sum())} rows are not 1-5",
            details=f"e.g. {values[bad].iloc[0]!r}",
            hint="imd_quintile is 1 (most deprived 20%) to 5 (least deprived); empty when not known.",
        )
    out = numeric.astype("Int64").astype("string").fillna(IMD_NOT_KNOWN)
    return out.astype(str)


def _ethnic_group(values: pd.Series) -> pd.Series:
    out = values.astype("string").fillna(NOT_KNOWN_GROUP)
    bad = ~out.isin(CENSUS_GROUPS)
    if bad.any():
        raise RiskstratError(
            f"ethnic_group: {int(bad.sum())} rows are not a 2021-census group",
            details=f"e.g. {out[bad].iloc[0]!r}",
            hint=f"Expected one of {', '.join(CENSUS_GROUPS)}; map ETHNIC CATEGORY codes with "
            "riskstrat.ingest.reference.ethnic_group().",
        )
    return out.astype(str)


def _sex_group(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    out = text.map(_SEX_ALIASES)
    return out.fillna("Not known").astype(str)


def _age_key(label: str) -> tuple[int, str]:
    match = re.match(r"\s*(\d+)", label)
    return (int(match.group(1)) if match else 10_000, label)


def _age_group(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("Not known").astype(str)


def assign_groups(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Grouping]]:
    """Add one text column per grouping to a copy of ``frame`` and describe the groupings.

    Args:
        frame: Rows with ``imd_quintile``, ``ethnic_group``, ``sex`` and ``age_band``.

    Returns:
        The copy, with the columns recoded to report labels plus
        ``imd_quintile_x_ethnic_group``, and the groupings in report order.

    Raises:
        RiskstratError: If a column is missing or holds a value outside its code set.
    """
    missing = [c for c in ("imd_quintile", "ethnic_group", "sex", "age_band") if c not in frame.columns]
    if missing:
        raise RiskstratError(
            f"the fairness audit needs columns {missing}, which are missing",
            hint="Predictions and list selections carry the audit columns of the feature matrix.",
        )
    out = frame.copy()
    out["imd_quintile"] = _imd_group(out["imd_quintile"])
    out["ethnic_group"] = _ethnic_group(out["ethnic_group"])
    out["sex"] = _sex_group(out["sex"])
    out["age_band"] = _age_group(out["age_band"])
    out["imd_quintile_x_ethnic_group"] = out["imd_quintile"] + " x " + out["ethnic_group"]

    imd_groups = ("1", "2", "3", "4", "5") + (
        (IMD_NOT_KNOWN,) if (out["imd_quintile"] == IMD_NOT_KNOWN).any() else ()
    )
    sex_groups = tuple(g for g in SEX_GROUPS if g in ("Female", "Male") or (out["sex"] == g).any())
    age_groups = tuple(sorted(out["age_band"].unique(), key=_age_key))
    cross = tuple(f"{q} x {e}" for q in imd_groups for e in CENSUS_GROUPS)
    groupings = [
        Grouping(
            "imd_quintile", "Deprivation (IMD 2019 quintile; 1 = most deprived 20%, Core20)", imd_groups
        ),
        Grouping("ethnic_group", "Ethnic group (2021 census high-level group)", CENSUS_GROUPS),
        Grouping("sex", "Sex (stated gender)", sex_groups),
        Grouping("age_band", "Age band", age_groups),
        Grouping("imd_quintile_x_ethnic_group", "Deprivation quintile x ethnic group", cross),
    ]
    return out, groupings


def group_label(grouping: str, group: str) -> str:
    """The plain label of a group, e.g. IMD quintile '1' -> '1 - most deprived 20% (Core20)'."""
    if grouping == "imd_quintile":
        return IMD_LABELS.get(group, group)
    if grouping == "imd_quintile_x_ethnic_group":
        quintile, _, ethnic = group.partition(" x ")
        return f"IMD {IMD_LABELS.get(quintile, quintile)} x {ethnic}"
    return group


def reference_group(grouping: Grouping, sizes: pd.Series, configured: str) -> str:
    """The group others are compared with.

    Args:
        grouping: The grouping.
        sizes: People per group (index = group).
        configured: The configured reference, or ``"largest"``.

    Returns:
        The reference group's value.

    Raises:
        RiskstratError: If a configured reference is not a group of this grouping.
    """
    if configured == "largest":
        return str(sizes.reindex(list(grouping.groups)).fillna(0).idxmax())
    if configured not in grouping.groups:
        raise RiskstratError(
            f"reference group {configured!r} of {grouping.name} is not one of {list(grouping.groups)}",
            hint="Fix reference_groups in configs/fairness.yaml.",
        )
    return configured


def is_sufficient(n: float, events: float, min_n: int, min_events: int) -> bool:
    """True when a cell is large enough to judge: enough people, events and non-events."""
    return n >= min_n and events >= min_events and (n - events) >= min_events
