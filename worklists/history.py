"""The history of published lists: change since last week, weeks on the list, and who left and why.

The history lives in the published week folders themselves: each
``<output_dir>/worklists/<week>/`` holds, beside the XLSX, CSV and manifest,
``history.parquet`` with that week's lists as ``week``, ``mdt``, ``person_id``,
``practice_code``, ``rank``, ``probability`` and ``risk_band`` (pseudonymised IDs
only; never an NHS number), listed in ``manifest.json`` with its SHA-256. The
folder is published in one atomic step, so a week is either published with its
history or not at all: a kill cannot publish a week the history does not know.
Re-running a week replaces its folder, and a week is always compared with weeks
before it, so a re-run gives the same answer.

Earlier versions kept the history apart, in ``<output_dir>/worklists/history/<week>.parquet``.
:func:`reconcile_history` moves such a file into its week's folder; a file whose
week folder is gone, or a week folder with no history, is refused with the week
named and what to do, since the lists after it would be compared with the wrong week.

Change is measured against the MDT's last published list before this week:
``new`` (not on it), ``up`` / ``down`` (risk higher / lower as shown, i.e. to
0.1 percentage point) or ``same``. Weeks on the list counts this week and the
consecutive published lists before it that held the person.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from riskstrat.catalog import output_catalog
from riskstrat.errors import RiskstratError
from riskstrat.io import atomic_directory, file_sha256, write_parquet
from riskstrat.worklists.decisions import DECISIONS
from riskstrat.worklists.selection import MdtSelection, probability_column
from riskstrat.worklists.settings import Mdt

HISTORY_COLUMNS: tuple[str, ...] = (
    "week",
    "mdt",
    "person_id",
    "practice_code",
    "rank",
    "probability",
    "risk_band",
)

LEFT_DIED = "Died"
LEFT_DEREGISTERED = "Deregistered"
LEFT_MOVED_PRACTICE = "Registered with a practice outside this MDT"
LEFT_CASELOAD = "Joined a caseload"
LEFT_NOT_SCORED = "Not in this week's scored population"
LEFT_RISK_FELL = "Risk fell"
LEFT_BELOW_CAPACITY = "Moved below capacity (others' risk rose)"
LEFT_BELOW_AGE = "Below the age floor"


def left_by_decision(code: str) -> str:
    """The 'Why they left' reason of a person an MDT decision kept off this week's list."""
    return f"MDT decision: {DECISIONS[code]}"


LEAVER_REASONS: dict[str, str] = {
    LEFT_DIED: "Died on or before this week's data date.",
    LEFT_DEREGISTERED: "No longer registered with a GP practice at the data date.",
    LEFT_MOVED_PRACTICE: "Now registered with a practice that belongs to another MDT.",
    **{
        left_by_decision(code): (
            "The MDT recorded this decision on an earlier list; by the decision rules in "
            "configs/mdts.yaml it keeps the person off this week's list."
        )
        for code in DECISIONS
    },
    LEFT_CASELOAD: "Now on an active caseload, and this MDT leaves caseload patients off.",
    LEFT_NOT_SCORED: "Not in this week's scored population (for example, no longer in the model's cohort).",
    LEFT_BELOW_AGE: "Younger than this MDT's minimum age at the data date.",
    LEFT_RISK_FELL: "This week's predicted risk is lower than last week's, and too low for the list.",
    LEFT_BELOW_CAPACITY: "Their risk did not fall, but other people's rose above it and filled the list.",
}
"""What each 'Why they left' reason means, in the order they are tested (the first that applies is given).

There is no reason for a type 1 opt-out: where an MDT leaves opt-outs off, a person who opts
out is not on its 'Left the list' at all (see :func:`leavers`). Nor is there one for the lottery:
a person in this week's draw who was not drawn is never shown, also not on 'Left the list', so
that the MDT cannot tell who lost the draw and the randomised comparison stays clean.
"""


WEEK_HISTORY = "history.parquet"
"""The week's history rows, inside its published folder ``<output_dir>/worklists/<week>/``."""
LEGACY_HISTORY_FOLDER = "history"
"""Where earlier versions kept the history, ``<output_dir>/worklists/history/<week>.parquet``."""

logger = logging.getLogger(__name__)


def history_dir(output_dir: Path) -> Path:
    """The folder of published weeks, ``<output_dir>/worklists``; each week folder holds its history."""
    return output_catalog(output_dir).worklists


def _week_of(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def published_weeks(folder: Path) -> dict[date, Path]:
    """Week -> its published folder, for every ``<week>`` folder in ``folder`` (the worklists folder)."""
    folder = Path(folder)
    weeks = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        week = _week_of(path.name)
        if week is not None and path.is_dir():
            weeks[week] = path
    return weeks


def _no_history_error(folder: Path, week: date) -> RiskstratError:
    return RiskstratError(
        f"week {week} was published in {folder / week.isoformat()} but its history was never recorded "
        "(a run of an earlier version stopped between the export and the history step), so later "
        "weeks cannot say what changed since it",
        hint=(
            f"Re-run that week with the extract it was made from (`riskstrat worklists --week {week}`), "
            "which republishes it with its history; or, if its lists were never sent out, move the "
            f"folder {week.isoformat()} out of {folder}. Then run again."
        ),
    )


def _read_week_history(folder: Path, week: date) -> pd.DataFrame:
    """One published week's history, or a clear error when the file is damaged or not a history."""
    path = folder / week.isoformat() / WEEK_HISTORY
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise RiskstratError(
            f"{path}: the history of week {week} cannot be read ({type(exc).__name__}), so later weeks "
            "cannot say what changed since it",
            hint=(
                f"Restore the folder {week.isoformat()} from your backup, or re-run that week with the "
                f"extract it was made from (`riskstrat worklists --week {week}`). Then run again."
            ),
        ) from None
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise RiskstratError(
            f"{path}: the history of week {week} lacks column(s) {', '.join(missing)}",
            hint=f"Restore the folder {week.isoformat()} from your backup, or re-run that week.",
        )
    return frame[list(HISTORY_COLUMNS)]


def displayed_risk(probability: pd.Series | np.ndarray | float) -> pd.Series | np.ndarray | float:
    """Risk as shown on the list: per cent to one decimal place."""
    return np.round(np.asarray(probability, dtype="float64") * 100, 1)


def load_history(folder: Path, before: date) -> pd.DataFrame:
    """Every published list for weeks before ``before``, from the week folders' ``history.parquet``.

    Args:
        folder: The worklists folder (:func:`history_dir`).
        before: The week being run; it and later weeks are left out.

    Returns:
        The history rows (empty, with the history columns, if none).

    Raises:
        RiskstratError: If a week folder before ``before`` has no history
            (:func:`reconcile_history` moves an earlier version's history into place first).
    """
    folder = Path(folder)
    frames = []
    for week, path in published_weeks(folder).items():
        if week >= before:
            continue
        if not (path / WEEK_HISTORY).is_file():
            raise _no_history_error(folder, week)
        frames.append(_read_week_history(folder, week))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in HISTORY_COLUMNS})
    history = pd.concat(frames, ignore_index=True)
    history["week"] = pd.to_datetime(history["week"]).dt.date
    history["person_id"] = history["person_id"].astype(str)
    return history


def history_records(week: date, selections: dict[str, MdtSelection]) -> pd.DataFrame:
    """This week's lists as history rows.

    Args:
        week: The week being published.
        selections: MDT name -> its selection.

    Returns:
        One row per listed person per MDT with the history columns.
    """
    frames = []
    for name, selection in selections.items():
        listed = selection.listed
        frames.append(
            pd.DataFrame(
                {
                    "week": week.isoformat(),
                    "mdt": name,
                    "person_id": listed["person_id"].astype(str),
                    "practice_code": listed["practice_code"].astype(str),
                    "rank": listed["rank"].astype("int64"),
                    "probability": listed["probability"].astype("float64"),
                    "risk_band": listed["risk_band"].astype(str),
                }
            )
        )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in HISTORY_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(HISTORY_COLUMNS)]


def record_week(week_folder: Path, records: pd.DataFrame) -> Path:
    """Write one week's history rows into its (staging) week folder, published with it.

    Args:
        week_folder: The week's folder being written (the export's staging folder).
        records: Output of :func:`history_records`.

    Returns:
        The file written, ``<week_folder>/history.parquet``.
    """
    target = Path(week_folder) / WEEK_HISTORY
    write_parquet(records[list(HISTORY_COLUMNS)], target)
    return target


def reconcile_history(output_dir: Path, week: date) -> list[date]:
    """Bring an earlier version's history into the week folders, and refuse a history that does not match.

    Each ``worklists/history/<w>.parquet`` of an earlier version is moved into
    ``worklists/<w>/`` (the folder is republished in one step with the file added
    to its manifest), then the old file is removed; a kill at any point leaves
    either the old layout or the new one, and the next run finishes the move.
    Run it while holding the output folder's lock.

    Args:
        output_dir: The outputs folder.
        week: The week about to run: an inconsistency in an earlier week stops
            the run, one in this or a later week is only reported.

    Returns:
        The weeks whose history was moved into their folder.

    Raises:
        RiskstratError: If an earlier week has a history file but no published
            folder, or a published folder and no history.
    """
    folder = history_dir(output_dir)
    legacy = folder / LEGACY_HISTORY_FOLDER
    weeks = published_weeks(folder)
    moved = []
    for path in sorted(legacy.glob("*.parquet")) if legacy.is_dir() else []:
        recorded = _week_of(path.stem)
        if recorded is None:
            continue
        published = weeks.get(recorded)
        if published is None:
            if recorded < week:
                raise RiskstratError(
                    f"the worklist history records week {recorded} ({path}), but that week's folder "
                    f"{folder / recorded.isoformat()} does not exist, so later weeks would be compared "
                    "with lists no one received",
                    hint=(
                        f"Restore the folder {recorded.isoformat()} from your backup; or, if week "
                        f"{recorded} was withdrawn, delete {path}. Then run again."
                    ),
                )
            logger.warning("history file of week %s has no published folder; left as it is", recorded)
            continue
        if not (published / WEEK_HISTORY).is_file():
            _add_history_to_week(published, path)
            moved.append(recorded)
        path.unlink()
    if legacy.is_dir() and not any(legacy.iterdir()):
        legacy.rmdir()
    for recorded, published in weeks.items():
        if not (published / WEEK_HISTORY).is_file():
            if recorded < week:
                raise _no_history_error(folder, recorded)
            logger.warning("week %s was published without a history (it is not compared with)", recorded)
    if moved:
        logger.warning("moved the history of %d week(s) into their week folders", len(moved))
    return moved


def _add_history_to_week(published: Path, history_file: Path) -> None:
    """Republish ``published`` with ``history_file`` as its ``history.parquet``, listed in its manifest."""
    from riskstrat.worklists.export import MANIFEST  # export imports this module

    with atomic_directory(published) as staging:
        for item in published.iterdir():
            if item.is_file():
                shutil.copy2(item, staging / item.name)
        shutil.copy2(history_file, staging / WEEK_HISTORY)
        manifest_path = staging / MANIFEST
        if manifest_path.is_file():
            content = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = dict(content.get("files", {}))
            files[WEEK_HISTORY] = file_sha256(staging / WEEK_HISTORY)
            content["files"] = dict(sorted(files.items()))
            manifest_path.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _mdt_weeks(history: pd.DataFrame, mdt: str) -> list[date]:
    return sorted(set(history.loc[history["mdt"] == mdt, "week"]), reverse=True)


def previous_week(history: pd.DataFrame, mdt: str) -> date | None:
    """Week of the MDT's last published list in ``history`` (None: this is its first week)."""
    weeks = _mdt_weeks(history, mdt)
    return weeks[0] if weeks else None


def last_list(history: pd.DataFrame, mdt: str) -> pd.DataFrame:
    """The MDT's last published list in ``history`` (empty if it has none)."""
    weeks = _mdt_weeks(history, mdt)
    if not weeks:
        return history.iloc[0:0]
    return history.loc[(history["mdt"] == mdt) & (history["week"] == weeks[0])]


def change_since_last_week(listed: pd.DataFrame, mdt: str, history: pd.DataFrame) -> pd.DataFrame:
    """Change since the MDT's last published list, and weeks on the list.

    Args:
        listed: This week's list for the MDT (``person_id``, ``probability``).
        mdt: The MDT's name.
        history: Published lists of earlier weeks (:func:`load_history`).

    Returns:
        Index ``person_id`` (in the order of ``listed``): ``change`` (new, up, down,
        same), ``weeks_on_list``, ``previous_rank`` and ``previous_probability``.
    """
    person_ids = listed["person_id"].astype(str)
    previous = last_list(history, mdt).set_index("person_id")
    prev_p = (
        person_ids.map(previous["probability"]) if len(previous) else pd.Series(np.nan, index=listed.index)
    )
    prev_rank = person_ids.map(previous["rank"]) if len(previous) else pd.Series(np.nan, index=listed.index)
    now = displayed_risk(listed["probability"].to_numpy())
    before = displayed_risk(prev_p.to_numpy())
    change = np.select([np.isnan(before), now > before, now < before], ["new", "up", "down"], default="same")
    weeks_on = np.ones(len(listed), dtype="int64")
    still = np.ones(len(listed), dtype=bool)
    for week in _mdt_weeks(history, mdt):
        members = set(history.loc[(history["mdt"] == mdt) & (history["week"] == week), "person_id"])
        still &= person_ids.isin(members).to_numpy()
        if not still.any():
            break
        weeks_on += still
    return pd.DataFrame(
        {
            "change": change,
            "weeks_on_list": weeks_on,
            "previous_rank": prev_rank.astype("Int64").to_numpy(),
            "previous_probability": prev_p.to_numpy(dtype="float64"),
        },
        index=pd.Index(person_ids, name="person_id"),
    )


def history_by_mdt(history: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each MDT's own rows of the history, split in one pass.

    Passing an MDT its own rows to :func:`change_since_last_week` and
    :func:`leavers` gives the same answer as the whole history, without
    scanning every MDT's lists once per MDT.

    Args:
        history: Published lists of earlier weeks (:func:`load_history`).

    Returns:
        MDT name -> its history rows; MDTs that never published are absent.
    """
    return {str(name): rows for name, rows in history.groupby("mdt", sort=False)}


@dataclass(frozen=True)
class PersonLookup:
    """This week's facts about each person by ``person_id``, built once per run for every MDT.

    Attributes:
        facts: The scored population (``p_<outcome>``, ``age``), indexed by ``person_id`` (text).
        state: The status of every patient indexed by ``person_id`` (``facts`` when no
            status table was given); it also covers people no longer scored (e.g. who died).
    """

    facts: pd.DataFrame
    state: pd.DataFrame


def person_lookup(scored: pd.DataFrame, status: pd.DataFrame | None = None) -> PersonLookup:
    """Index this week's scored population (and status) by person, for :func:`leavers`.

    Args:
        scored: This week's scored population (with the status flags when ``status`` is None).
        status: Status of every patient (:func:`population_status`), or None.

    Returns:
        The lookup.
    """
    facts = scored.assign(person_id=scored["person_id"].astype(str)).set_index("person_id")
    state = facts
    if status is not None:
        state = status.assign(person_id=status["person_id"].astype(str)).set_index("person_id")
    return PersonLookup(facts=facts, state=state)


def _leaver_rows(
    gone: pd.DataFrame, practices: list[str], probabilities: list[float], reasons: list[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": gone["person_id"].astype(str).to_numpy(),
            "practice_code": np.array(practices, dtype=object),
            "previous_rank": gone["rank"].astype("int64").to_numpy(),
            "previous_probability": gone["probability"].astype("float64").to_numpy(),
            "probability": np.array(probabilities, dtype="float64"),
            "reason": np.array(reasons, dtype=object),
        }
    )


def leavers(
    mdt: Mdt,
    history: pd.DataFrame,
    listed: pd.DataFrame,
    people: PersonLookup,
    decided: Mapping[str, str] | None = None,
    not_drawn: Collection[str] = (),
) -> pd.DataFrame:
    """People on the MDT's last published list who are not on this week's, with why.

    When the MDT leaves type 1 opt-outs off, a person with a type 1 opt-out is not
    among the leavers at all, whatever else applies: they are removed without a
    trace (no ID, practice, risk or reason). Likewise a person in this week's lottery
    pool who was not drawn (``not_drawn``) is never among the leavers: showing them
    would tell the MDT who lost the draw. For everyone else the first reason that
    applies is given, in this order: died, deregistered, registered with a practice
    outside the MDT, kept off by the MDT's own decision ("MDT decision: Not
    appropriate now"), joined a caseload (when caseloads are excluded), below the age
    floor, not in this week's scored population, risk fell (lower as shown), or moved
    below capacity because others' risk rose.

    Args:
        mdt: The MDT.
        history: Published lists of earlier weeks (all MDTs', or just this MDT's).
        listed: This week's list for the MDT.
        people: :func:`person_lookup` of this week's scored population and status,
            made once and shared by every MDT.
        decided: Person ID -> the decision code that kept them off this week's list
            (:attr:`~riskstrat.worklists.selection.MdtSelection.held_by_decision`).
        not_drawn: The people in this week's lottery pool who were not drawn
            (:attr:`~riskstrat.worklists.selection.MdtSelection.lottery_losers`); they are
            left out of the result.

    Returns:
        ``person_id``, ``practice_code`` (this week's, "" if unknown), ``previous_rank``,
        ``previous_probability``, ``probability`` (this week's on the MDT's outcome, NaN
        when not scored) and ``reason``, in last week's rank order.
    """
    previous = last_list(history, mdt.name)
    if previous.empty:
        return _leaver_rows(previous, [], [], [])
    gone = previous.loc[~previous["person_id"].isin(set(listed["person_id"].astype(str)))]
    gone = gone.sort_values("rank")
    facts, state = people.facts, people.state
    if mdt.exclusions.type1_opt_out == "exclude":
        gone = gone.loc[~gone["person_id"].isin(_opted_out(gone["person_id"], state))]
    # Lottery losers are recorded in assignment.parquet only: never shown, so the draw stays blind.
    gone = gone.loc[~gone["person_id"].isin({str(p) for p in not_drawn})]
    p_col = probability_column(mdt.outcome)
    decided = decided or {}
    practices: list[str] = []
    probabilities: list[float] = []
    reasons: list[str] = []
    for person, prev_p in zip(gone["person_id"], gone["probability"], strict=True):
        row = state.loc[person] if person in state.index else None
        current = facts.loc[person] if person in facts.index else None

        def flag(name: str, row: pd.Series | None = row) -> bool:
            return bool(row is not None and name in row.index and bool(row[name]))

        practice = row["practice_code"] if row is not None and "practice_code" in row.index else None
        practices.append("" if practice is None or pd.isna(practice) else str(practice))
        risk = current.get(p_col, np.nan) if current is not None else np.nan
        probabilities.append(np.nan if pd.isna(risk) else float(risk))
        if flag("deceased"):
            reasons.append(LEFT_DIED)
        elif flag("deregistered"):
            reasons.append(LEFT_DEREGISTERED)
        elif practice is not None and practice not in mdt.practices:
            reasons.append(LEFT_MOVED_PRACTICE)
        elif person in decided:
            reasons.append(left_by_decision(decided[person]))
        elif mdt.exclusions.active_caseload == "exclude" and flag("on_caseload"):
            reasons.append(LEFT_CASELOAD)
        elif current is None or pd.isna(risk):
            reasons.append(LEFT_NOT_SCORED)
        elif "age" in current.index and current["age"] < mdt.min_age:
            reasons.append(LEFT_BELOW_AGE)
        elif displayed_risk(float(risk)) < displayed_risk(float(prev_p)):
            reasons.append(LEFT_RISK_FELL)
        else:
            reasons.append(LEFT_BELOW_CAPACITY)
    return _leaver_rows(gone, practices, probabilities, reasons)


def _opted_out(person_ids: pd.Series, state: pd.DataFrame) -> set[str]:
    """Which of ``person_ids`` have a type 1 opt-out in ``state`` (looked up one by one: few leave)."""
    if "type1_opt_out" not in state.columns:
        return set()
    flags = state["type1_opt_out"]
    return {p for p in person_ids if p in flags.index and bool(np.any(flags.loc[[p]].fillna(False)))}
