"""Importing the MDTs' returned decisions, and reading them back for the lists and the board.

The checks and the rules are pure functions in :mod:`riskstrat.worklists.decisions`
and :mod:`riskstrat.worklists.selection`; this module reads the returned
workbooks, the published week folders and the decision history, and writes the
history back. An import is all or nothing: every file given is checked first,
and the new history is written in one atomic step (:func:`riskstrat.io.write_parquet`),
so a refused file or a failure while writing leaves the history as it was.

``riskstrat decisions import PATH...`` imports the files given, all or none.
The weekly run imports each file in ``decisions.returns_dir`` on its own
(:func:`import_returns_task`): an imported file moves to ``imported/`` inside
it; a refused file stays, and the reason is logged without patient data; a file
with no decision recorded imports nothing and stays too, with a warning each week.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from prefect import task
from prefect.cache_policies import NO_CACHE

from riskstrat.catalog import output_catalog
from riskstrat.errors import RiskstratError
from riskstrat.evaluation.decisions import decisions_payload
from riskstrat.io import file_sha256, write_parquet
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.shared import holds_output_lock
from riskstrat.worklists.decisions import (
    DECISION_HISTORY_COLUMNS,
    DECISIONS,
    NOT_DISCUSSED,
    TURNED_DOWN,
    DecisionImportError,
    Issue,
    empty_decision_history,
    merge_decisions,
    new_or_changed,
    read_returned_rows,
    read_stamp,
    returned_decisions,
)
from riskstrat.worklists.export import MANIFEST
from riskstrat.worklists.history import WEEK_HISTORY, history_dir, load_history, published_weeks
from riskstrat.worklists.settings import DecisionSettings

IMPORTED_FOLDER = "imported"
"""Subfolder of the returns folder that imported files are moved to."""


@dataclass(frozen=True)
class ImportedFile:
    """What one returned workbook brought (counts only).

    Attributes:
        name: The file's name.
        mdt: Its MDT.
        week: The week of its list.
        listed: People on the returned list.
        recorded: Rows with a decision.
        changed: Decisions the history did not already hold.
    """

    name: str
    mdt: str
    week: date
    listed: int
    recorded: int
    changed: int

    @property
    def empty(self) -> bool:
        """Whether no row holds a decision: the file brought nothing (often the wrong copy returned)."""
        return self.recorded == 0

    def summary(self) -> str:
        """One line for the terminal or the log (no patient-level values); a warning when it brought nothing."""
        where = f"{self.name}: {self.mdt}, week {self.week.isoformat()}"
        if self.empty:
            return (
                f"Warning: {where}: no MDT decision recorded on any of its {self.listed} people, so nothing "
                "was imported (check the MDT filled in the MDT decision column and returned the filled-in copy)"
            )
        return (
            f"{where}: {self.recorded} of {self.listed} people with a decision, {self.changed} new or changed"
        )


def read_decision_history(output_dir: Path) -> pd.DataFrame:
    """The decision history (empty when none has been imported).

    Raises:
        RiskstratError: If the file exists but cannot be read as a decision history.
    """
    path = output_catalog(output_dir).decision_history
    if not path.is_file():
        return empty_decision_history()
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise RiskstratError(
            f"{path}: the decision history cannot be read ({type(exc).__name__})",
            hint="Restore it from your backup; the returned files in the returns folder's 'imported' "
            "subfolder can be imported again to rebuild it.",
        ) from None
    missing = [c for c in DECISION_HISTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise RiskstratError(
            f"{path}: the decision history lacks column(s) {', '.join(missing)}",
            hint="Restore it from your backup, or re-import the returned files.",
        )
    return frame[list(DECISION_HISTORY_COLUMNS)]


def published_list(output_dir: Path, week: date, mdt: str) -> pd.DataFrame:
    """The MDT's list as published for ``week``, its history file checked against the week's manifest.

    Returns:
        ``person_id``, ``rank``, ``probability`` of the MDT's rows; empty when the week
        or the MDT has no published list.

    Raises:
        RiskstratError: If the week's history does not match its manifest.
    """
    folder = output_catalog(output_dir).week(week)
    path = folder / WEEK_HISTORY
    if not path.is_file():
        return pd.DataFrame(columns=["person_id", "rank", "probability"])
    manifest = folder / MANIFEST
    listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", {}) if manifest.is_file() else {}
    if listed.get(WEEK_HISTORY) != file_sha256(path):
        raise RiskstratError(
            f"{path}: the published list of week {week} does not match its manifest",
            hint=f"Restore the folder {week.isoformat()} from your backup before importing decisions on it.",
        )
    history = pd.read_parquet(path)
    return history.loc[history["mdt"] == mdt, ["person_id", "rank", "probability"]].reset_index(drop=True)


def _open(path: Path) -> Workbook:
    try:
        return load_workbook(path, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DecisionImportError(
            f"{path.name}: cannot be opened as an XLSX workbook ({type(exc).__name__})",
            hint="Return the worklist as an Excel workbook (.xlsx), as it was issued.",
        ) from None


def check_return(output_dir: Path, path: Path, imported_at: datetime) -> tuple[Issue, pd.DataFrame, int]:
    """Read one returned workbook and check it against its stamp and the published list.

    Returns:
        Its issue (MDT, week), its coded decisions (:data:`DECISION_HISTORY_COLUMNS`) and
        how many people it lists.

    Raises:
        DecisionImportError: If it is not a list published here, or differs from it.
    """
    path = Path(path)
    book = _open(path)
    issue = read_stamp(book, path.name)
    returned = read_returned_rows(book, path.name)
    published = published_list(output_dir, issue.week, issue.mdt)
    coded = returned_decisions(path.name, file_sha256(path), issue, returned, published, imported_at)
    return issue, coded, len(returned)


def import_decisions(
    output_dir: Path, paths: Sequence[Path], imported_at: datetime | None = None
) -> list[ImportedFile]:
    """Import returned workbooks into the decision history: all of them, or none.

    Run it holding the output folder's lock (the command and the weekly flow do).

    Args:
        output_dir: The outputs folder (published weeks and the decision history).
        paths: The returned workbooks.
        imported_at: When (UTC); now if None.

    Returns:
        One summary per file, in the order given.

    Raises:
        DecisionImportError: For the first file refused; nothing is recorded.
    """
    when = imported_at or datetime.now(UTC)
    history = read_decision_history(output_dir)
    merged, results = history, []
    for path in map(Path, paths):
        issue, coded, listed = check_return(output_dir, path, when)
        changed = new_or_changed(merged, coded)
        merged = merge_decisions(merged, coded)
        results.append(ImportedFile(path.name, issue.mdt, issue.week, listed, len(coded), changed))
    if any(r.changed for r in results):
        write_parquet(merged, output_catalog(output_dir).decision_history)
    return results


@dataclass
class ReturnsResult:
    """What the weekly run made of the returns folder (file names and counts only).

    Attributes:
        imported: The files imported (and archived).
        refused: Names of the files refused (left in place).
        empty: Names of the files with no decision recorded (nothing imported; left in place).
    """

    imported: list[ImportedFile] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)


def returned_files(folder: Path) -> list[Path]:
    """The workbooks waiting in the returns folder: ``.xlsx`` in any case, by name.

    Temporary and lock files of Excel and LibreOffice (``~$...``, ``.~lock...``) are left alone.
    """
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() == ".xlsx" and not path.name.startswith((".", "~$"))
    )


def _archive(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():  # a corrected file with the same name: keep both
        target = folder / f"{path.stem}-{file_sha256(path)[:8]}{path.suffix}"
    shutil.move(str(path), str(target))
    return target


def import_returns(settings: DecisionSettings, output_dir: Path) -> ReturnsResult:
    """Import every returned workbook waiting in ``settings.returns_dir``, each on its own.

    An imported file moves to the ``imported`` subfolder; a refused file stays where it
    is and the reason is logged without patient data (the error's log text). A file
    with no decision recorded brings nothing: it stays where it is, with a warning, so
    the coordinator sees it (and can return the filled-in copy or delete it).

    Returns:
        The files imported, and the names of those refused and of those with no decision.
    """
    folder = Path(settings.returns_dir)
    result = ReturnsResult()
    logger = run_logger(__name__)
    for path in returned_files(folder):
        try:
            (imported,) = import_decisions(output_dir, [path])
        except RiskstratError as exc:
            logger.warning("returned worklist refused: %s (%s)", exc, exc.hint)
            result.refused.append(path.name)
            continue
        except Exception as exc:  # a damaged file must not stop the week's lists; its text may quote data
            logger.warning(
                "returned worklist refused: %s: unexpected %s (run `riskstrat --debug decisions import` on it)",
                path.name,
                type(exc).__name__,
            )
            result.refused.append(path.name)
            continue
        if imported.empty:  # kept where the coordinator will see it, and warned about each week
            logger.warning("returned worklist left in the returns folder: %s", imported.summary())
            result.empty.append(path.name)
            continue
        _archive(path, folder / IMPORTED_FOLDER)
        logger.info("decisions imported: %s", imported.summary())
        result.imported.append(imported)
    return result


@task(name="import-decisions", cache_policy=NO_CACHE)
def import_returns_task(settings: DecisionSettings, output_dir: Path) -> ReturnsResult:
    """The weekly run's step before the lists are drawn: import the returned worklists."""
    return import_returns(settings, output_dir)


@holds_output_lock("decisions")
def import_decisions_command(config: Config, paths: Sequence[Path]) -> list[ImportedFile]:
    """``riskstrat decisions import``: import the files given, all or none, holding the output lock."""
    return import_decisions(Path(config.data.output_dir), paths)


# ----------------------------------------------------------------------------- the board's summary


def _manifest(output_dir: Path, week: date) -> dict:
    path = output_catalog(output_dir).week(week) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def mdt_outcomes(output_dir: Path, week: date) -> dict[str, str]:
    """MDT -> the outcome its list of ``week`` was ranked by, from that week's manifest (empty if none)."""
    mdts = _manifest(output_dir, week).get("mdts", {})
    return {str(name): str(counts.get("outcome", "")) for name, counts in mdts.items()}


def listed_people_groups(output_dir: Path, weeks: Sequence[date]) -> pd.DataFrame:
    """IMD quintile and ethnic group of the people published in ``weeks``, from each week's feature cache.

    Each week's manifest names its extract snapshot and data date; the weekly run cached
    the feature matrix of that snapshot and date, which carries both columns.

    Returns:
        ``week`` (ISO text), ``person_id``, ``imd_quintile``, ``ethnic_group``; weeks whose
        cache is gone are left out.
    """
    catalog = output_catalog(output_dir)
    frames = []
    for week in weeks:
        manifest = _manifest(output_dir, week)
        if not manifest:
            continue
        cache = catalog.features / str(manifest.get("extract_snapshot_hash", ""))
        found = sorted(cache.glob(f"features_{manifest.get('data_date', '')}_*.parquet"))
        if not found:
            continue
        people = pd.read_parquet(found[0], columns=["person_id", "imd_quintile", "ethnic_group"])
        frames.append(people.assign(week=week.isoformat(), person_id=people["person_id"].astype(str)))
    if not frames:
        return pd.DataFrame(columns=["week", "person_id", "imd_quintile", "ethnic_group"])
    return pd.concat(frames, ignore_index=True)


def board_decisions(output_dir: Path, outcome: str | None = None) -> dict | None:
    """The governance report's summary of the MDTs' decisions (:func:`decisions_payload`), or None.

    Covers every published week that has a decision recorded; counts pass disclosure control.

    Args:
        output_dir: The outputs folder.
        outcome: Only the lists ranked by this outcome (the report's model); None: every list.
    """
    decisions = read_decision_history(output_dir)
    if decisions.empty:
        return None
    weeks = sorted({date.fromisoformat(str(w)) for w in decisions["week"]})
    folder = history_dir(output_dir)
    published = [w for w in weeks if w in published_weeks(folder)]
    if not published:
        return None
    lists = load_history(folder, before=max(published) + timedelta(days=1))
    lists = lists.loc[lists["week"].isin(published)]
    if outcome is not None:  # a model's report covers the lists its outcome ranked
        ranked_by = {week: mdt_outcomes(output_dir, week) for week in published}
        of_outcome = [
            ranked_by[w].get(str(m)) == outcome for w, m in zip(lists["week"], lists["mdt"], strict=True)
        ]
        lists = lists.loc[of_outcome]
        if lists.empty:
            return None
    lists = lists.assign(week=lambda f: f["week"].map(date.isoformat))
    groups = listed_people_groups(output_dir, published)
    listed = lists.merge(groups, on=["week", "person_id"], how="left")
    return decisions_payload(
        decisions, listed, wordings=DECISIONS, not_discussed=NOT_DISCUSSED, turned_down=TURNED_DOWN
    )
