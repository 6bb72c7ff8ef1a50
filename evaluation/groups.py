"""The population groups the fairness audit compares.

Every grouping lists all of its groups, in a fixed order, whether or not anyone
in the data falls in them: a group too small to judge is reported as
"insufficient data", never dropped, so the board sees who the audit cannot speak for.

Each grouping is one spec in :data:`GROUPINGS`: the column it reads, its label, how
values become groups, its groups in report order, its default reference group,
whether it gates promotion and whether the report plots it. The audit, its flags,
the report and the defaults of ``FairnessSettings`` all derive from the registry, so
a new grouping is one spec here, plus its column in the feature matrix if the matrix
does not carry it yet.

Place groupings (local authority, MDT, GP practice) are audited like the others. A
place can also be where data went missing: when its recorded events fall well below
prediction, it may have lost data rather than gained health, so the audit says so.
Their input columns are optional: a place grouping whose column is absent, or that
has fewer than two places in the data (one list for everyone, a one-district
footprint), is left out of the audit, since there is nothing to compare.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.features.social_care import LONG_TERM_SUPPORT
from riskstrat.ingest.reference import (
    CENSUS_GROUPS,
    ENGLAND_ETHNICITY_2021,
    NOT_KNOWN_GROUP,
    STATED_GENDER_LABELS,
    imd_lookup,
)

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

_SEX_ALIASES = {
    **{code.lower(): label for code, label in STATED_GENDER_LABELS.items()},
    **{label.lower(): label for label in STATED_GENDER_LABELS.values()},
    "m": "Male",
    "f": "Female",
    "0": "Not known",
    "unknown": "Not known",
}
"""PERSON STATED GENDER CODE values, their labels and common spellings -> the label."""

PLACE_NOT_KNOWN = "Not known"
"""Place of a person whose LSOA, MDT or practice is not known (or outside the reference)."""

NO_MDT = "No MDT"
"""MDT of a person whose practice no MDT covers (never listed)."""

SUPPORT_YES, SUPPORT_NO, SUPPORT_NOT_KNOWN = "Yes", "No", "Not known"
"""Groups of the long-term social care support grouping; Not known: the local authority's latest
return due by the test date is missing (``social_care_known`` 0, so the feature is empty)."""


Recoder = Callable[[pd.Series], pd.Series]
"""Turns an input column into group values (text), refusing values outside its code set."""


@dataclass(frozen=True)
class Grouping:
    """One way of dividing the population, resolved against the data being audited.

    Attributes:
        name: Column the group values are written to (also the grouping's id in flags).
        label: Plain-English name for the report.
        groups: Every group, in report order (groups absent from the data included).
    """

    name: str
    label: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class GroupingSpec:
    """A fairness grouping: the one place the audit, its flags, the report and the settings read it from.

    Attributes:
        name: The grouping's id in flags, settings and the report, and the column its
            groups are written to.
        label: Plain-English name for the report.
        column: Input column it reads; the predictions and list selections carry it.
        recode: Turns the column's values into group values.
        groups: Groups always reported, in report order (a group nobody is in is shown
            as insufficient data, never dropped).
        shown_if_present: Further groups, in order, reported only when someone is in them.
        sort_key: Orders any other group found in the data, reported after those above.
        group_labels: Plain labels of groups whose value is not plain enough on its own.
        intersection_prefix: Put before the group's label inside an intersection ("IMD ").
        reference: Default reference group: a group value, or ``"largest"``.
        gates: Whether its raised flags block promotion by default.
        plotted: Whether the report draws its list shares and need at equal risk.
        england_shares: Each group's share of England's population, where known; the
            report's representativeness table compares the test rows with it.
        place: Whether it divides people by where they live or are registered (local
            authority, MDT, practice): a place with fewer recorded events than predicted may
            have lost data rather than gained health.
        required: Whether the predictions and selections must carry its column; an optional
            grouping whose column is absent, or with fewer than two groups, is left out.
    """

    name: str
    label: str
    column: str
    recode: Recoder
    groups: tuple[str, ...] = ()
    shown_if_present: tuple[str, ...] = ()
    sort_key: Callable[[str], Any] = str
    group_labels: Mapping[str, str] = field(default_factory=dict)
    intersection_prefix: str = ""
    reference: str = "largest"
    gates: bool = True
    plotted: bool = False
    england_shares: Mapping[str, float] = field(default_factory=dict)
    place: bool = False
    required: bool = True

    def group_label(self, group: str) -> str:
        """The plain label of ``group``."""
        return self.group_labels.get(group, group)

    def report_groups(self, values: pd.Series) -> tuple[str, ...]:
        """Every group to report, in order, given the recoded values in the data."""
        present = set(values.unique())
        listed = self.groups + tuple(g for g in self.shown_if_present if g in present)
        others = sorted(present - set(self.groups) - set(self.shown_if_present), key=self.sort_key)
        return listed + tuple(others)


@dataclass(frozen=True)
class IntersectionSpec:
    """A grouping crossing two others, e.g. deprivation quintile x ethnic group.

    Its groups are every pair of the parts' groups, written ``"<first> x <second>"``.
    It is reported for all MDTs together, not MDT by MDT (the cells would be too small).

    Attributes:
        name: The grouping's id (also its column).
        label: Plain-English name for the report.
        parts: Names of the two registered groupings it crosses.
        reference: Default reference group: a group value, or ``"largest"``.
        gates: Whether its raised flags block promotion by default.
        plotted: Whether the report draws its list shares and need at equal risk.
    """

    name: str
    label: str
    parts: tuple[str, str]
    reference: str = "largest"
    gates: bool = True
    plotted: bool = False

    def group_label(self, group: str) -> str:
        """The plain label of a pair, e.g. 'IMD 1 - most deprived 20% (Core20) x Asian'."""
        first, second = (_simple(part) for part in self.parts)
        value_1, _, value_2 = group.partition(INTERSECTION_SEPARATOR)
        return (
            f"{first.intersection_prefix}{first.group_label(value_1)}{INTERSECTION_SEPARATOR}"
            f"{second.intersection_prefix}{second.group_label(value_2)}"
        )


INTERSECTION_SEPARATOR = " x "
"""Between the two groups of an intersection's group value."""


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


@cache
def _lad_of_lsoa() -> dict[str, str]:
    lookup = imd_lookup()
    return dict(zip(lookup["lsoa_code"], lookup["lad_code"], strict=True))


@cache
def _lad_names() -> dict[str, str]:
    lookup = imd_lookup().drop_duplicates("lad_code")
    return dict(zip(lookup["lad_code"], lookup["lad_name"], strict=True))


class _LocalAuthorityNames(Mapping[str, str]):
    """LAD 2019 code -> name, read from the shipped IMD 2019 reference when first asked."""

    def __getitem__(self, code: str) -> str:
        return _lad_names()[code]

    def __iter__(self) -> Iterator[str]:
        return iter(_lad_names())

    def __len__(self) -> int:
        return len(_lad_names())


def _local_authority(values: pd.Series) -> pd.Series:
    """LSOA 2011 code -> its local authority district (LAD 2019 code); 'Not known' outside England's IMD."""
    text = values.astype("string").str.strip()
    return text.map(_lad_of_lsoa()).fillna(PLACE_NOT_KNOWN).astype(str)


def _long_term_support(values: pd.Series) -> pd.Series:
    """``social_care_long_term_support`` 1/0/empty -> Yes / No / Not known."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = (numeric.notna() & ~numeric.isin([0, 1])) | (numeric.isna() & values.notna())
    if bad.any():
        raise RiskstratError(
            f"{LONG_TERM_SUPPORT}: {int(bad.sum())} rows are not 0, 1 or empty",
            details=f"e.g. {values[bad].iloc[0]!r}",
            hint="1 = a long-term social care service open at the latest return due by T, 0 = none, "
            "empty = not known (the local authority's latest return due by T is missing).",
        )
    out = numeric.map({1: SUPPORT_YES, 0: SUPPORT_NO})
    return out.fillna(SUPPORT_NOT_KNOWN).astype(str)


def _place(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "").fillna(PLACE_NOT_KNOWN).astype(str)


def _place_key(group: str) -> tuple[bool, bool, str]:
    # Named places in order; those not served by an MDT, then the unknown ones, last.
    return (group in (NO_MDT, PLACE_NOT_KNOWN), group == PLACE_NOT_KNOWN, group)


GROUPINGS: dict[str, GroupingSpec | IntersectionSpec] = {
    spec.name: spec
    for spec in (
        GroupingSpec(
            name="imd_quintile",
            label="Deprivation (IMD 2019 quintile; 1 = most deprived 20%, Core20)",
            column="imd_quintile",
            recode=_imd_group,
            groups=("1", "2", "3", "4", "5"),
            shown_if_present=(IMD_NOT_KNOWN,),
            group_labels=IMD_LABELS,
            intersection_prefix="IMD ",
            # Least deprived: the comparison NHS England's Core20PLUS5 uses.
            reference="5",
            plotted=True,
            # Quintiles of LSOAs ranked by deprivation: a fifth of England each.
            england_shares=dict.fromkeys(("1", "2", "3", "4", "5"), 0.2),
        ),
        GroupingSpec(
            name="ethnic_group",
            label="Ethnic group (2021 census high-level group)",
            column="ethnic_group",
            recode=_ethnic_group,
            groups=CENSUS_GROUPS,
            plotted=True,
            england_shares=ENGLAND_ETHNICITY_2021,
        ),
        GroupingSpec(
            name="sex",
            label="Sex (stated gender)",
            column="sex",
            recode=_sex_group,
            groups=("Female", "Male"),
            shown_if_present=("Indeterminate", "Not known"),
        ),
        GroupingSpec(
            name="age_band",
            label="Age band",
            column="age_band",
            recode=_age_group,
            sort_key=_age_key,
            # Age is a model input and need differs by age by design: audited and reported,
            # for the board to read, but not an automatic stop.
            gates=False,
        ),
        GroupingSpec(
            name="long_term_support",
            label="Receiving long-term social care support",
            # Empty when the person's local authority's latest return due by T is missing:
            # not known, never read as "no support".
            column=LONG_TERM_SUPPORT,
            recode=_long_term_support,
            groups=(SUPPORT_YES, SUPPORT_NO, SUPPORT_NOT_KNOWN),
            reference=SUPPORT_NO,
            # Need differs with social care by design (it follows need): audited and reported for
            # the board to read, not an automatic stop. Left out when the extract has no social care.
            gates=False,
            required=False,
        ),
        GroupingSpec(
            name="local_authority",
            label="Local authority of residence",
            # Residence, not the practice's district: a capture failure (admissions to a trust
            # outside the area) follows where people live, and every English LSOA has its LA.
            column="lsoa_code",
            recode=_local_authority,
            sort_key=_place_key,
            group_labels=_LocalAuthorityNames(),
            place=True,
            required=False,
        ),
        GroupingSpec(
            name="mdt",
            label="MDT (neighbourhood team) of the GP practice",
            column="mdt",
            recode=_place,
            sort_key=_place_key,
            group_labels={NO_MDT: "No MDT covers the practice"},
            place=True,
            required=False,
        ),
        GroupingSpec(
            name="gp_practice",
            label="GP practice",
            column="practice_code",
            recode=_place,
            sort_key=_place_key,
            # Practices differ for reasons the model does not see and their cells are small:
            # reported for the board to read, not an automatic stop.
            gates=False,
            place=True,
            required=False,
        ),
        IntersectionSpec(
            name="imd_quintile_x_ethnic_group",
            label="Deprivation quintile x ethnic group",
            parts=("imd_quintile", "ethnic_group"),
        ),
    )
}
"""Every fairness grouping, in report order; add one here and the audit, flags, report and settings follow."""


def register_grouping(spec: GroupingSpec | IntersectionSpec) -> None:
    """Add a grouping to :data:`GROUPINGS` (after those already there).

    Raises:
        RiskstratError: If the name is taken or an intersection crosses an unknown grouping.
    """
    if spec.name in GROUPINGS:
        raise RiskstratError(f"fairness grouping {spec.name!r} is already registered")
    if isinstance(spec, IntersectionSpec):
        unknown = [p for p in spec.parts if not isinstance(GROUPINGS.get(p), GroupingSpec)]
        if unknown:
            raise RiskstratError(f"intersection {spec.name!r} crosses unknown grouping(s) {unknown}")
    GROUPINGS[spec.name] = spec


def _simple(name: str) -> GroupingSpec:
    spec = GROUPINGS[name]
    if not isinstance(spec, GroupingSpec):
        raise RiskstratError(f"{name!r} is an intersection, not a grouping it can cross")
    return spec


def grouping_names() -> tuple[str, ...]:
    """Names of every registered grouping, in report order."""
    return tuple(GROUPINGS)


def grouping_columns() -> tuple[str, ...]:
    """Input columns the audit's predictions and list selections carry (one per grouping, optional ones included)."""
    return tuple(dict.fromkeys(s.column for s in GROUPINGS.values() if isinstance(s, GroupingSpec)))


def required_grouping_columns() -> tuple[str, ...]:
    """Input columns the audit's predictions and list selections must carry (a place's column is optional)."""
    required = {s.column for s in GROUPINGS.values() if isinstance(s, GroupingSpec) and s.required}
    return tuple(c for c in grouping_columns() if c in required)


def is_place(grouping: str) -> bool:
    """Whether ``grouping`` divides people by place (local authority, MDT, practice)."""
    spec = GROUPINGS.get(grouping)
    return isinstance(spec, GroupingSpec) and spec.place


def reported_by_mdt(grouping: str) -> bool:
    """Whether the lists are broken down by ``grouping`` MDT by MDT (not intersections, not places)."""
    return not is_intersection(grouping) and not is_place(grouping)


def default_references() -> dict[str, str]:
    """Each grouping's default reference group ('largest' or a group value)."""
    return {name: spec.reference for name, spec in GROUPINGS.items()}


def default_gating() -> tuple[str, ...]:
    """Groupings whose raised flags block promotion by default."""
    return tuple(name for name, spec in GROUPINGS.items() if spec.gates)


def plotted_groupings() -> tuple[str, ...]:
    """Groupings whose list shares and need at equal risk the report draws."""
    return tuple(name for name, spec in GROUPINGS.items() if spec.plotted)


def is_intersection(grouping: str) -> bool:
    """Whether ``grouping`` crosses two others (reported for all MDTs together and left out of forest plots)."""
    return isinstance(GROUPINGS.get(grouping), IntersectionSpec)


def assign_groups(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Grouping]]:
    """Add one text column per registered grouping to a copy of ``frame`` and describe the groupings.

    Args:
        frame: Rows carrying every required grouping column (:func:`required_grouping_columns`)
            and any optional ones available.

    Returns:
        The copy, with each grouping's groups in its ``name`` column (intersections
        included), and the groupings in report order. An optional grouping whose column
        is absent, or with fewer than two groups in ``frame``, is left out of the list
        (its column is still written when its input column is there).

    Raises:
        RiskstratError: If a required column is missing or a column holds a value outside its code set.
    """
    missing = [c for c in required_grouping_columns() if c not in frame.columns]
    if missing:
        raise RiskstratError(
            f"the fairness audit needs columns {missing}, which are missing",
            hint="Predictions and list selections carry the grouping columns of the feature matrix.",
        )
    out = frame.copy()
    groups: dict[str, tuple[str, ...]] = {}
    for name, spec in GROUPINGS.items():
        if isinstance(spec, GroupingSpec) and spec.column in out.columns:
            out[name] = spec.recode(out[spec.column])
            present = spec.report_groups(out[name])
            if spec.required or out[name].nunique() >= 2:
                groups[name] = present
    for name, spec in GROUPINGS.items():
        if isinstance(spec, IntersectionSpec) and all(part in groups for part in spec.parts):
            first, second = spec.parts
            out[name] = out[first] + INTERSECTION_SEPARATOR + out[second]
            groups[name] = tuple(
                f"{a}{INTERSECTION_SEPARATOR}{b}" for a in groups[first] for b in groups[second]
            )
    return out, [
        Grouping(name, spec.label, groups[name]) for name, spec in GROUPINGS.items() if name in groups
    ]


def same_people_places(
    frame: pd.DataFrame, groupings: list[Grouping]
) -> dict[tuple[str, str], tuple[str, str]]:
    """Place groups whose people are exactly those of a group of an earlier place grouping.

    An MDT that serves exactly one local authority's residents (Walsall's only MDT, say) is
    the same people under two names: judged twice, one gap would raise two findings and
    count twice. Such a group is judged once, under the earlier grouping (local authority
    before MDT before practice), and reported as the same people.

    Args:
        frame: The audited rows, with each grouping's column (:func:`assign_groups`).
        groupings: The audited groupings, in report order.

    Returns:
        ``(grouping, group) -> (grouping, group)`` of the earlier place group with the same rows.
    """
    seen: dict[bytes, tuple[str, str]] = {}
    same: dict[tuple[str, str], tuple[str, str]] = {}
    for grouping in groupings:
        if not is_place(grouping.name) or grouping.name not in frame.columns:
            continue
        for group, rows in frame.groupby(grouping.name, sort=False).indices.items():
            members = pd.Index(frame.index[rows]).sort_values().to_numpy().tobytes()
            if members in seen and seen[members][0] != grouping.name:
                same[(grouping.name, str(group))] = seen[members]
            else:
                seen.setdefault(members, (grouping.name, str(group)))
    return same


def same_people_label(grouping: str, group: str, same_as: tuple[str, str]) -> str:
    """A place group's label naming the group it is the same people as.

    E.g. "Walsall Neighbourhood 1 (same people as Walsall, local authority of residence)".
    """
    other_grouping, other_group = same_as
    name = GROUPINGS[other_grouping].label.split(" (")[0]
    if name[1:2].islower():  # "Local authority ..." -> "local authority ...", but "MDT" stays
        name = name[0].lower() + name[1:]
    return (
        f"{group_label(grouping, group)} (same people as {group_label(other_grouping, other_group)}, {name})"
    )


def left_out_groupings(groupings: list[Grouping]) -> tuple[str, ...]:
    """Registered groupings missing from an audit's ``groupings`` (no column, or fewer than two groups)."""
    audited = {g.name for g in groupings}
    return tuple(name for name in GROUPINGS if name not in audited)


def group_label(grouping: str, group: str) -> str:
    """The plain label of a group, e.g. IMD quintile '1' -> '1 - most deprived 20% (Core20)'."""
    spec = GROUPINGS.get(grouping)
    return spec.group_label(group) if spec is not None else group


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
