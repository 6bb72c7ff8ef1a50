"""Reference data shipped with riskstrat, and functions that load it.

IMD 2019 contains public sector information licensed under the Open Government
Licence v3.0. Source: MHCLG, English Indices of Deprivation 2019. See
``imd2019/README.md`` beside this file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).parent
IMD_ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: MHCLG, English Indices of Deprivation 2019."
)
NOT_KNOWN_GROUP = "Not known / Not stated"
CENSUS_GROUPS: tuple[str, ...] = ("Asian", "Black", "Mixed", "White", "Other", NOT_KNOWN_GROUP)
STATED_GENDER_LABELS: dict[str, str] = {"1": "Male", "2": "Female", "9": "Indeterminate", "X": "Not known"}
"""PERSON STATED GENDER CODE (NHS Data Dictionary) and its labels: 9 is "Indeterminate (unable to be
classified as either male or female)", X "Not known (not recorded)"."""
ENGLAND_ETHNICITY_2021: dict[str, float] = {
    "Asian": 0.096,
    "Black": 0.042,
    "Mixed": 0.030,
    "White": 0.810,
    "Other": 0.022,
}
"""Share of England's usual residents by high-level ethnic group, Census 2021 (ONS TS021), rounded."""
LSOA_PATTERN = r"^E0[0-9]{7}$"
"""An English LSOA 2011 code (Welsh ones start W01)."""


def _read_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / name, dtype=str, keep_default_na=False)


def _to_int(values: pd.Series) -> pd.Series:
    return values.str.replace(",", "", regex=False).astype("int64")


@cache
def imd_lookup() -> pd.DataFrame:
    """IMD 2019 by LSOA 2011, with mid-2015 population by broad age band.

    Returns:
        One row per English LSOA: ``lsoa_code``, ``lsoa_name``, ``lad_code``,
        ``lad_name``, ``imd_rank`` (1 = most deprived), ``imd_decile``
        (1 = most deprived 10%), ``imd_quintile`` (1 = most deprived 20%,
        Core20), ``population``, ``population_0_15``, ``population_16_59``,
        ``population_60_plus``.
    """
    imd = pd.read_csv(
        REFERENCE_DIR / "imd2019" / "File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv.gz",
        dtype=str,
        encoding="utf-8-sig",
    )
    imd.columns = ["lsoa_code", "lsoa_name", "lad_code", "lad_name", "imd_rank", "imd_decile"]
    population = pd.read_csv(
        REFERENCE_DIR / "imd2019" / "File_6_-_IoD2019_Population_Denominators.csv.gz",
        dtype=str,
        encoding="utf-8-sig",
    )
    population = population.iloc[:, [0, 4, 5, 6, 7]]
    population.columns = [
        "lsoa_code",
        "population",
        "population_0_15",
        "population_16_59",
        "population_60_plus",
    ]
    table = imd.merge(population, on="lsoa_code", how="left", validate="one_to_one")
    for column in ("imd_rank", "population", "population_0_15", "population_16_59", "population_60_plus"):
        table[column] = _to_int(table[column])
    table["imd_decile"] = table["imd_decile"].astype("int64")
    table["imd_quintile"] = (table["imd_decile"] + 1) // 2
    return table


@cache
def ethnic_categories() -> pd.DataFrame:
    """ETHNIC CATEGORY codes with their 2021-census high-level group.

    Returns:
        Columns ``code``, ``description``, ``census_2021_group``; Z and 99 map
        to "Not known / Not stated", kept as a group of its own.
    """
    return _read_csv("ethnic_categories.csv")


def ethnic_group(codes: pd.Series) -> pd.Series:
    """Map ethnic category codes to 2021-census high-level groups.

    Args:
        codes: ETHNIC CATEGORY codes; missing or unrecognised values count as not known.

    Returns:
        The census group of each code, "Not known / Not stated" where unknown.
    """
    mapping = dict(zip(ethnic_categories()["code"], ethnic_categories()["census_2021_group"], strict=True))
    return codes.map(mapping).fillna(NOT_KNOWN_GROUP).astype(str)


@cache
def admission_methods() -> pd.DataFrame:
    """ADMISSION METHOD codes with their group (elective, emergency, maternity, other)."""
    return _read_csv("admission_methods.csv")


@cache
def department_types() -> pd.DataFrame:
    """EMERGENCY CARE DEPARTMENT TYPE codes 01-04 with descriptions."""
    return _read_csv("department_types.csv")


@cache
def bnf_chapters() -> pd.DataFrame:
    """BNF chapters (two-digit prefix of a BNF code) with descriptions."""
    return _read_csv("bnf_chapters.csv")


@cache
def conditions() -> pd.DataFrame:
    """The condition vocabulary used in ``gp_diagnoses.condition``.

    Returns:
        Columns ``condition``, ``label``, ``is_ltc`` (a long-term condition
        counted in multimorbidity) and ``efi_deficit`` (the electronic frailty
        index deficit the code counts towards, empty if none). There are 36
        distinct deficits, as in Clegg et al. 2016.
    """
    table = _read_csv("conditions.csv")
    table["is_ltc"] = table["is_ltc"] == "true"
    return table


def long_term_conditions() -> tuple[str, ...]:
    """Names of the long-term conditions in the vocabulary."""
    table = conditions()
    return tuple(table.loc[table["is_ltc"], "condition"])


def efi_deficits() -> tuple[str, ...]:
    """The 36 electronic frailty index deficits, sorted."""
    return tuple(sorted(d for d in conditions()["efi_deficit"].unique() if d))
