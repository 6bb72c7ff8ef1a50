"""Settings of the weekly MDT worklists (``configs/mdts.yaml``).

Each neighbourhood MDT covers a set of practices, either listed by ODS code or
named by neighbourhood and resolved through the practice reference file
(``practice_code, practice_name, neighbourhood, lad_code, list_size``). When no
MDT is listed, there is one MDT per neighbourhood in that file, each with the
``default_mdt`` settings: this is how the synthetic default works, because the
synthetic practice codes depend on the seed.

Exclusions that always apply and are not settings: people who have died and
people no longer registered with one of the MDT's practices. The National Data
Opt-out does not apply to direct care (the NDO covers research and planning),
and worklists are direct care, so it has no setting here.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import AfterValidator, Field, field_validator, model_validator

from riskstrat.errors import RiskstratError
from riskstrat.features.outcomes import outcome_names
from riskstrat.settings import Settings
from riskstrat.worklists.decisions import DECISIONS


def _registered_outcome(name: str | None) -> str | None:
    # Checked against the outcome registry when the file is read, so a registered outcome can rank a list.
    if name is not None and name not in outcome_names():
        raise ValueError(f"unknown outcome {name!r}; expected one of {', '.join(outcome_names())}")
    return name


Outcome = Annotated[str, AfterValidator(_registered_outcome)]
"""The name of a registered outcome (:data:`riskstrat.features.outcomes.OUTCOMES`)."""
OptionalOutcome = Annotated[str | None, AfterValidator(_registered_outcome)]
"""A registered outcome's name, or empty."""
PRACTICE_REFERENCE_COLUMNS: tuple[str, ...] = ("practice_code", "neighbourhood")
MDT_NAME_MAX_LENGTH = 100
"""Longest MDT name: it heads every printed page, whose header Excel limits to 255 characters."""


class ExclusionSettings(Settings):
    """Who is left off an MDT's list beyond the always-excluded (died, deregistered)."""

    active_caseload: Literal["exclude", "include", "flag"] = Field(
        "flag",
        description=(
            "People on an active virtual-ward / proactive-care caseload: exclude (left off), "
            "include (listed like anyone else) or flag (listed, with the caseload team shown)."
        ),
    )
    type1_opt_out: Literal["exclude", "include"] = Field(
        "exclude",
        description=(
            "People with a type 1 opt-out recorded at their practice: exclude (default) or include "
            "(only where the ICS's data protection impact assessment allows it for direct care)."
        ),
    )


class MdtDefaults(Settings):
    """Settings an MDT takes unless it sets its own; also used for every neighbourhood MDT by default."""

    capacity_people: int | None = Field(
        50, ge=1, description="People the MDT can discuss a week (set this or capacity_share)."
    )
    capacity_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Capacity as a share of the people registered with its practices in the scored population "
            "(e.g. 0.005 = 0.5%), rounded up; set this or capacity_people."
        ),
    )
    min_age: int = Field(18, ge=0, le=120, description="Youngest age (whole years at the run date) listed.")
    outcome: Outcome = Field(
        "emergency_admission",
        description=(
            "The predicted outcome that ranks the list: emergency_admission (virtual ward, proactive care) "
            "or frequent_attendance (high-intensity-use or care-navigation service)."
        ),
    )
    exclusions: ExclusionSettings = Field(
        default_factory=ExclusionSettings, description="Caseload and opt-out handling."
    )

    @model_validator(mode="after")
    def _one_capacity(self) -> MdtDefaults:
        if (self.capacity_people is None) == (self.capacity_share is None):
            raise ValueError("set exactly one of capacity_people and capacity_share")
        return self


class MdtDefinition(Settings):
    """One MDT: its name, the practices it covers and, optionally, its own capacity and rules."""

    name: str = Field(
        min_length=1,
        max_length=MDT_NAME_MAX_LENGTH,
        pattern=r"\S",
        description="Name shown on the list and used for its file names (up to 100 characters).",
    )
    practices: tuple[str, ...] = Field(
        (), description="ODS codes of the practices it covers (set this or neighbourhood)."
    )
    neighbourhood: str | None = Field(
        None,
        description="Neighbourhood in the practice reference file whose practices it covers (or practices).",
    )
    capacity_people: int | None = Field(
        None, ge=1, description="People a week; empty = capacity_share or the default_mdt capacity."
    )
    capacity_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of its registered population; empty = capacity_people or default.",
    )
    min_age: int | None = Field(None, ge=0, le=120, description="Age floor; empty = default_mdt.min_age.")
    outcome: OptionalOutcome = Field(None, description="Outcome that ranks it; empty = default_mdt.outcome.")
    exclusions: ExclusionSettings | None = Field(
        None, description="Caseload and opt-out handling; empty = default_mdt.exclusions."
    )

    @model_validator(mode="after")
    def _practices_or_neighbourhood(self) -> MdtDefinition:
        if bool(self.practices) == (self.neighbourhood is not None):
            raise ValueError("set exactly one of practices and neighbourhood")
        if self.capacity_people is not None and self.capacity_share is not None:
            raise ValueError("set at most one of capacity_people and capacity_share")
        return self


class RiskBand(Settings):
    """One risk band: people at or above ``min`` (percentile or probability, per ``basis``)."""

    name: str = Field(min_length=1, description="Band name shown on the list, e.g. 'Very high'.")
    min: float = Field(
        ge=0, le=100, description="Lowest percentile (0-100) or probability (0-1) in the band."
    )


class RiskBandSettings(Settings):
    """How a person's risk is put into a band."""

    basis: Literal["percentile", "probability"] = Field(
        "probability",
        description=(
            "percentile: the person's place among everyone scored at the run date on the MDT's outcome "
            "(ICS-wide, so bands mean the same in every MDT); probability: the predicted risk itself (0-1)."
        ),
    )
    bands: tuple[RiskBand, ...] = Field(
        (
            RiskBand(name="Very high", min=0.8),
            RiskBand(name="High", min=0.75),
            RiskBand(name="Moderate", min=0.5),
        ),
        min_length=1,
        description="Bands from highest to lowest; a person takes the first band whose min they reach.",
    )
    otherwise: str = Field("Lower", min_length=1, description="Band of people below every band's min.")

    @model_validator(mode="after")
    def _bands_descending(self) -> RiskBandSettings:
        mins = [band.min for band in self.bands]
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("bands must be listed from highest min to lowest, without repeats")
        if self.basis == "probability" and max(mins) > 1:
            raise ValueError("with basis: probability every band's min is a probability between 0 and 1")
        return self


DecisionAction = Literal["rest", "caseload", "stay"]
"""What a recorded MDT decision does to the person's place on that MDT's next lists."""


class DecisionSettings(Settings):
    """How the MDTs' recorded decisions come back and shape the next lists (``decisions`` in mdts.yaml)."""

    returns_dir: Path = Field(
        Path("outputs/decisions/returns"),
        description=(
            "Folder where returned worklists (XLSX with the MDT decision column filled in) are put; the "
            "weekly run imports them before drawing up the lists and moves each imported file to its "
            "'imported' subfolder (a refused file stays, with the reason logged)."
        ),
    )
    actions: dict[str, DecisionAction] = Field(
        default_factory=lambda: {
            "added_to_caseload": "caseload",
            "already_known": "rest",
            "not_appropriate": "rest",
            "declined": "rest",
            "could_not_contact": "stay",
            "not_discussed": "stay",
        },
        description=(
            "Decision code -> what it does to the person's place on this MDT's next lists: rest (left off "
            "for rest_weeks unless their risk rises by return_if_risk_rises_by), caseload (left off for "
            "caseload_weeks whatever exclusions.active_caseload says: in the caseload's care, they take no "
            "place on the list) or stay (listed as usual). Every decision code must be given."
        ),
    )
    rest_weeks: int = Field(
        12,
        ge=1,
        le=104,
        description="Weeks a rested person is left off after the list the decision was made on.",
    )
    return_if_risk_rises_by: float = Field(
        10.0,
        gt=0,
        le=100,
        description=(
            "A rested person comes back early when their predicted risk is at least this many percentage "
            "points above the risk on the list the decision was made on."
        ),
    )
    caseload_weeks: int = Field(
        12,
        ge=1,
        le=104,
        description=(
            "Weeks a person the MDT added to its caseload is left off its list, counted from the week of "
            "the list the decision was made on (the extract's caseload table normally shows them by then; "
            "from then on exclusions.active_caseload applies)."
        ),
    )

    @field_validator("actions")
    @classmethod
    def _every_decision(cls, value: dict[str, DecisionAction]) -> dict[str, DecisionAction]:
        unknown = sorted(set(value) - set(DECISIONS))
        missing = sorted(set(DECISIONS) - set(value))
        if unknown:
            raise ValueError(f"unknown decision code(s) {unknown}; expected {list(DECISIONS)}")
        if missing:
            raise ValueError(f"give an action for every decision code; missing {missing}")
        return {code: value[code] for code in DECISIONS}


class CutoffRecordSettings(Settings):
    """Who is recorded around each list's capacity cut-off (``cutoff_record`` in mdts.yaml).

    Each published week keeps, in ``worklists/<week>/assignment.parquet``, every listed
    person and the next eligible people below the cut-off, for the impact evaluation
    (:mod:`riskstrat.worklists.assignment`). People below the cut-off are recorded, never shown.
    """

    people_below: int = Field(
        50,
        ge=0,
        le=10_000,
        description=(
            "Eligible people just below each MDT's capacity cut-off recorded with the week (ranked "
            "capacity+1 .. capacity+people_below): the comparison group of the impact evaluation. "
            "They are never shown on any list."
        ),
    )


class LotterySettings(Settings):
    """An optional seeded draw for the last places of each list (``lottery`` in mdts.yaml).

    The last ``places`` places are filled at random among the ``pool`` eligible people
    ranked ``capacity - places + 1 .. capacity - places + pool``; see
    :func:`riskstrat.worklists.selection.draw_lottery`.
    """

    enabled: bool = Field(
        False,
        description=(
            "Fill the last places of each list by a seeded random draw among people whose risk is "
            "nearly the same as at the cut-off (off by default; a decision for the board and the "
            "clinical safety officer)."
        ),
    )
    places: int = Field(
        5, ge=1, description="How many of the last places of each list the draw fills (at most its capacity)."
    )
    pool: int = Field(
        10,
        ge=2,
        description=(
            "How many eligible people, from rank capacity-places+1 down, take part in the draw "
            "(more than places; fewer when fewer are eligible)."
        ),
    )
    seed: int = Field(
        20261206,
        ge=0,
        description=(
            "Seed of the draws; each week's draw for an MDT uses sha256(f'{seed}|{week}|{mdt}'), so a "
            "re-run of a week draws the same people."
        ),
    )

    @model_validator(mode="after")
    def _pool_above_places(self) -> LotterySettings:
        if self.pool <= self.places:
            raise ValueError(f"pool ({self.pool}) must be larger than places ({self.places})")
        return self


class MdtSettings(Settings):
    """The MDTs that receive a weekly worklist (``configs/mdts.yaml``)."""

    practices_file: Path = Field(
        Path("outputs/reference/practices.csv"),
        description=(
            "Practice reference CSV (practice_code, practice_name, neighbourhood, lad_code, list_size) "
            "that resolves neighbourhoods to practices."
        ),
    )
    default_mdt: MdtDefaults = Field(
        default_factory=MdtDefaults,
        description="Settings an MDT takes unless it sets its own (and every MDT when none are listed).",
    )
    mdts: tuple[MdtDefinition, ...] = Field(
        (), description="The MDTs; empty = one per neighbourhood in practices_file with default_mdt settings."
    )
    reasons_count: int = Field(3, ge=1, le=5, description="Reasons shown per person.")
    risk_bands: RiskBandSettings = Field(
        default_factory=RiskBandSettings, description="How risk is put into bands."
    )
    decisions: DecisionSettings = Field(
        default_factory=DecisionSettings,
        description="How recorded MDT decisions are imported and shape the next lists.",
    )
    reidentification_key: Path | None = Field(
        None,
        description=(
            "CSV or Parquet of person_id, nhs_number. When set, the NHS number is added to the XLSX and CSV "
            "only (never history, logs or manifest). Empty = IDs stay pseudonymised."
        ),
    )
    cutoff_record: CutoffRecordSettings = Field(
        default_factory=CutoffRecordSettings,
        description="Who is recorded (never shown) around each list's capacity cut-off, for the impact evaluation.",
    )
    lottery: LotterySettings = Field(
        default_factory=LotterySettings,
        description="An optional seeded draw for the last places of each list (off by default).",
    )

    @field_validator("mdts")
    @classmethod
    def _unique_names(cls, value: tuple[MdtDefinition, ...]) -> tuple[MdtDefinition, ...]:
        names = [mdt_slug(m.name) for m in value]
        if len(set(names)) != len(names):
            raise ValueError("MDT names must be unique (ignoring case and punctuation)")
        return value

    @model_validator(mode="after")
    def _lottery_fits_capacity(self) -> MdtSettings:
        if not self.lottery.enabled:
            return self
        places = self.lottery.places
        default = self.default_mdt.capacity_people
        if not self.mdts and default is not None and default < places:
            raise ValueError(
                f"lottery.places ({places}) is more than default_mdt.capacity_people ({default}): "
                "a draw cannot fill more places than a list has"
            )
        for mdt in self.mdts:
            own = mdt.capacity_people is not None or mdt.capacity_share is not None
            capacity = mdt.capacity_people if own else default
            if capacity is not None and capacity < places:
                raise ValueError(
                    f"MDT '{mdt.name}' has capacity {capacity}, fewer than lottery.places ({places}): "
                    "lower lottery.places or raise its capacity"
                )
        return self

    def fingerprint(self) -> str:
        """A short hash of every worklist setting, written into the manifest."""
        payload = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Mdt:
    """An MDT with everything resolved: its practices and the rules that apply to it."""

    name: str
    practices: tuple[str, ...]
    outcome: str
    min_age: int
    capacity_people: int | None
    capacity_share: float | None
    exclusions: ExclusionSettings

    @property
    def slug(self) -> str:
        """File-name form of the name."""
        return mdt_slug(self.name)

    def capacity(self, registered: int) -> int:
        """People a week, given how many people are registered with its practices.

        Args:
            registered: People in the scored population registered with its practices.

        Returns:
            ``capacity_people``, or ``capacity_share`` of ``registered`` rounded up.
        """
        if self.capacity_people is not None:
            return self.capacity_people
        return math.ceil(float(self.capacity_share or 0) * registered - 1e-9)


SLUG_MAX_LENGTH = 80
"""Longest file-name form of an MDT name: with ``.xlsx`` well inside any file system's 255 bytes."""


def mdt_slug(name: str) -> str:
    """Lower-case file-name form of an MDT name ("North East PCN" -> "north-east-pcn").

    Only ASCII letters, digits and hyphens survive, so no name can reach another folder
    or make an invalid file name. A name longer than :data:`SLUG_MAX_LENGTH` is cut and
    ends with a short hash of the whole name, so two long names still differ.
    """
    out = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "-" for ch in name.strip())
    slug = "-".join(part for part in out.split("-") if part) or "mdt"
    if len(slug) > SLUG_MAX_LENGTH:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        slug = f"{slug[: SLUG_MAX_LENGTH - 9].rstrip('-')}-{digest}"
    return slug


def read_practices(path: Path) -> pd.DataFrame:
    """Read the practice reference file.

    Args:
        path: CSV with at least ``practice_code`` and ``neighbourhood``.

    Returns:
        The file as strings.

    Raises:
        RiskstratError: If the file is missing or lacks a needed column.
    """
    path = Path(path)
    if not path.is_file():
        raise RiskstratError(
            f"practice reference file not found: {path}",
            hint="Run `riskstrat generate` (synthetic) or set practices_file in configs/mdts.yaml.",
        )
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    except UnicodeDecodeError as exc:
        raise RiskstratError(
            f"{path}: not UTF-8 text (byte {exc.start})",
            hint="Save the practice reference file as UTF-8 CSV.",
        ) from None
    except (pd.errors.ParserError, OSError) as exc:
        raise RiskstratError(
            f"{path}: cannot be read as CSV ({type(exc).__name__})",
            hint="The practice reference file is a CSV with practice_code and neighbourhood columns.",
        ) from None
    missing = [c for c in PRACTICE_REFERENCE_COLUMNS if c not in table.columns]
    if missing:
        raise RiskstratError(
            f"{path}: missing column(s) {', '.join(missing)}",
            hint="The practice reference file needs practice_code and neighbourhood columns.",
        )
    if table.empty:
        raise RiskstratError(
            f"{path}: no practices listed",
            hint="The practice reference file needs one row per practice: practice_code, neighbourhood.",
        )
    twice = table.loc[table.duplicated("practice_code", keep=False)]
    if not twice.empty:
        code = str(twice["practice_code"].iloc[0])
        places = sorted(set(twice.loc[twice["practice_code"] == code, "neighbourhood"].astype(str)))
        raise RiskstratError(
            f"{path}: {twice['practice_code'].nunique():,} practice code(s) listed more than once, "
            f"e.g. {code} (neighbourhoods: {', '.join(places)})",
            hint="List each practice once, in the one neighbourhood whose MDT reviews its people.",
        )
    return table


def resolve_mdts(settings: MdtSettings, practices: pd.DataFrame | None) -> list[Mdt]:
    """Turn the settings into MDTs with their practices and rules.

    Args:
        settings: The worklist settings.
        practices: The practice reference table (needed for neighbourhoods and the default MDTs).

    Returns:
        MDTs in the order listed (the default ones in neighbourhood order).

    Raises:
        RiskstratError: If a neighbourhood is unknown or the reference table is needed but absent.
    """
    definitions = settings.mdts
    if not definitions:
        if practices is None:
            raise RiskstratError(
                "no MDTs listed in configs/mdts.yaml and no practice reference file to derive them from",
                hint="List mdts, or supply practices_file with a neighbourhood column.",
            )
        definitions = tuple(
            MdtDefinition(name=str(n), neighbourhood=str(n))
            for n in sorted(practices["neighbourhood"].dropna().unique())
            if str(n)
        )
    default = settings.default_mdt
    resolved: list[Mdt] = []
    for definition in definitions:
        if definition.neighbourhood is not None:
            if practices is None:
                raise RiskstratError(
                    f"MDT '{definition.name}' names neighbourhood '{definition.neighbourhood}' "
                    "but there is no practice reference file",
                    hint="Set practices_file in configs/mdts.yaml.",
                )
            codes = practices.loc[practices["neighbourhood"] == definition.neighbourhood, "practice_code"]
            if codes.empty:
                raise RiskstratError(
                    f"MDT '{definition.name}': neighbourhood '{definition.neighbourhood}' "
                    "has no practices in the practice reference file",
                    hint="Check the spelling against the file's neighbourhood column.",
                )
            practice_codes = tuple(sorted(codes.astype(str).unique()))
        else:
            practice_codes = tuple(sorted(set(definition.practices)))
        own_capacity = definition.capacity_people is not None or definition.capacity_share is not None
        resolved.append(
            Mdt(
                name=definition.name,
                practices=practice_codes,
                outcome=definition.outcome or default.outcome,
                min_age=definition.min_age if definition.min_age is not None else default.min_age,
                capacity_people=definition.capacity_people if own_capacity else default.capacity_people,
                capacity_share=definition.capacity_share if own_capacity else default.capacity_share,
                exclusions=definition.exclusions or default.exclusions,
            )
        )
    _check_practices_belong_once(resolved)
    return resolved


def _check_practices_belong_once(mdts: list[Mdt]) -> None:
    """Refuse a practice in two MDTs ranked by the same outcome: its people would be on both lists.

    Two MDTs may share practices when they rank by different outcomes (say, proactive
    care by emergency admission and a high-intensity-use service by frequent attendance).
    """
    owner: dict[tuple[str, str], str] = {}
    for mdt in mdts:
        for practice in mdt.practices:
            first = owner.setdefault((mdt.outcome, practice), mdt.name)
            if first != mdt.name:
                raise RiskstratError(
                    f"practice {practice} belongs to two MDTs ranked by {mdt.outcome}: "
                    f"'{first}' and '{mdt.name}', so its people would be on both lists",
                    hint=(
                        "Give each practice to one MDT per outcome (configs/mdts.yaml, or the "
                        "neighbourhood column of the practice reference file)."
                    ),
                )
