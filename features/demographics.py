"""Demographic features at an as-of date: age, sex and deprivation; the audit columns.

Care-home residence is a demographic feature too, but it is read from ``gp_diagnoses``
in the one pass over the diagnoses that finds the long-term conditions
(:func:`riskstrat.features.primary.condition_features`).

Ethnicity is not a model feature by default: ``ethnic_group`` (2021-census group)
is carried as an audit column for the fairness audit. ``include_ethnicity: true``
in ``configs/features.yaml`` adds one-hot ``ethnicity_<group>`` features.
"""

from __future__ import annotations

import re
from datetime import date

import ibis
import ibis.expr.types as ir

from riskstrat.features.common import as_flag
from riskstrat.features.point_in_time import age_in_years
from riskstrat.features.settings import FeatureSettings
from riskstrat.ingest.reference import CENSUS_GROUPS, NOT_KNOWN_GROUP, ethnic_categories, imd_lookup

AGE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "0-17"),
    (18, "18-29"),
    (30, "30-44"),
    (45, "45-64"),
    (65, "65-74"),
    (75, "75-84"),
    (85, "85+"),
)
"""Lower bound and label of each audit age band (``age_band``)."""

FEMALE_SEX_CODE = "2"
CARE_HOME_CONDITION = "care_home_resident"
"""The gp_diagnoses condition that makes ``care_home`` 1 when recorded on or before T."""


def ethnicity_feature_name(group: str) -> str:
    """Feature name of the one-hot column for a 2021-census group, e.g. ``ethnicity_not_known``."""
    if group == NOT_KNOWN_GROUP:
        return "ethnicity_not_known"
    return "ethnicity_" + re.sub(r"[^a-z0-9]+", "_", group.lower()).strip("_")


def age_band(age: ir.IntegerValue) -> ir.StringValue:
    """The audit age band of an age in years."""
    cases = []
    for (low, label), (high, _) in zip(AGE_BANDS, (*AGE_BANDS[1:], (10_000, "")), strict=True):
        cases.append(((age >= low) & (age < high), label))
    return ibis.cases(*cases, else_=None)


def _imd_table() -> ir.Table:
    imd = imd_lookup()[["lsoa_code", "imd_decile", "imd_quintile"]]
    return ibis.memtable(imd)


def ethnic_group(ethnic_category: ir.StringValue) -> ir.StringValue:
    """Map ETHNIC CATEGORY codes to 2021-census groups; missing or unknown -> Not known / Not stated."""
    reference = ethnic_categories()
    mapping = dict(zip(reference["code"], reference["census_2021_group"], strict=True))
    return ethnic_category.substitute(mapping, else_=NOT_KNOWN_GROUP).fill_null(NOT_KNOWN_GROUP)


def demographic_features(patients: ir.Table, as_of: date, settings: FeatureSettings) -> ir.Table:
    """Demographic features and audit columns for each person in ``patients``.

    Care-home residence (``care_home``) is read from ``gp_diagnoses`` in the same
    single pass as the long-term conditions
    (:func:`riskstrat.features.primary.condition_features`), not here.

    Args:
        patients: The patients rows to describe (usually the cohort at ``as_of``).
        as_of: The as-of date T.
        settings: Feature settings (``include_ethnicity``).

    Returns:
        One row per person: ``person_id``, ``age``, ``sex_female``, ``imd_decile``,
        ``imd_quintile`` (null when the LSOA is not in IMD 2019, e.g. Welsh),
        optional ``ethnicity_*`` flags, and audit columns
        ``ethnic_group``, ``practice_code``, ``lsoa_code``, ``age_band``, ``sex``.
    """
    imd = _imd_table()
    age = age_in_years(patients.birth_date, as_of)
    people = patients.select(
        "person_id",
        "lsoa_code",
        "practice_code",
        "sex",
        age=age,
        sex_female=as_flag(patients.sex == FEMALE_SEX_CODE),
        ethnic_group=ethnic_group(patients.ethnic_category),
        age_band=age_band(age),
    )
    people = people.left_join(imd, "lsoa_code").drop("lsoa_code_right")
    if settings.include_ethnicity:
        people = people.mutate(
            **{ethnicity_feature_name(g): as_flag(people.ethnic_group == g) for g in CENSUS_GROUPS}
        )
    return people
