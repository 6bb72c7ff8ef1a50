"""What the MDT decided about each listed person, and how it comes back.

The coded outcomes below are the one home of the decision vocabulary: the
drop-down on each list, the import, the history, next week's rules and the
governance report all read them from here. Free text never comes back:
riskstrat stores only the coded decision, the MDT and the week.

How a decision comes back:

1. When a list is written, :func:`stamp_workbook` adds a very hidden, protected
   sheet (:data:`STAMP_SHEET`) naming the MDT and week and, per listed person,
   the pseudonymised ID, rank and risk as issued, sealed by a digest. Every cell
   is text, so a re-save in Excel or LibreOffice leaves it as it was.
2. The MDT picks a decision from each row's drop-down and returns the workbook.
3. :func:`returned_decisions` checks the returned workbook against its stamp
   and against the list published for that MDT and week (the week folder's
   ``history.parquet``, itself checked against the manifest by the pipeline),
   and refuses the whole file, naming it, the MDT and week, how many rows and
   one pseudonymised ID, when anything does not match: a stamp that was edited,
   an MDT or week with no such list, a person not on that list, a rank or risk
   that differs from the list, a person twice, or a decision that is not one of
   the codes. Rows may be sorted or deleted, and gaps left: every row of the
   list's one visible sheet is read (hidden sheets are not); a blank decision
   records nothing, and a decision on a row without its Person ID is refused.
4. :func:`merge_decisions` adds the coded decisions to the decision history.
   The history holds one decision per MDT, week and person: a later file for
   the same week replaces a person's decision where it gives one and leaves it
   where it is blank, and a file already imported (same bytes) changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from riskstrat.errors import RiskstratError
from riskstrat.worklists.cells import inert_text, put

DECISION_HEADER = "MDT decision"
"""Heading of the column where the MDT records its decision on each listed row."""

DECISIONS: dict[str, str] = {
    "added_to_caseload": "Added to caseload / virtual ward",
    "already_known": "Already known to a service",
    "not_appropriate": "Not appropriate now",
    "declined": "Declined",
    "could_not_contact": "Could not contact",
    "not_discussed": "Not yet discussed",
}
"""Decision code -> the wording on the list's drop-down (codes are stored, wordings shown)."""

NOT_DISCUSSED = "not_discussed"
"""The one code that records that the MDT did not discuss the person (not counted as discussed)."""

TURNED_DOWN: tuple[str, ...] = ("not_appropriate", "declined")
"""The codes the board sees as turned down, by group (the governance report's decisions section)."""

DECISION_EXCLUSIONS: tuple[str, ...] = ("added_to_caseload", "rested")
"""The rules by which a decision keeps a person off the MDT's next lists (keys of
:attr:`riskstrat.worklists.selection.MdtSelection.excluded`, ``excluded_<rule>`` in the manifest)."""

STAMP_SHEET = "riskstrat issue"
"""The very hidden sheet identifying the issued list (MDT, week, people, ranks, risks, digest)."""
STAMP_TABLE_ROW = 6
"""Row of the stamp's table heading (Person ID, Rank, Risk (%)); people follow below it."""

PERSON_ID, RANK, RISK = "Person ID", "Rank", "Risk (%)"
"""Headings of the list's columns the import reads back (with :data:`DECISION_HEADER`)."""
READ_HEADINGS: tuple[str, ...] = (PERSON_ID, RANK, RISK, DECISION_HEADER)
HEADER_SEARCH_ROWS = 30
"""The list's heading row is looked for in this many rows at the top of each sheet."""

DECISION_HISTORY_COLUMNS: tuple[str, ...] = (
    "person_id",
    "mdt",
    "week",
    "decision",
    "issued_probability",
    "imported_at",
    "source_digest",
)
"""The decision history: pseudonymised ID, MDT, week of the list, decision code, the risk (0-1)
on that list, when it was imported (UTC) and the SHA-256 of the file it came from."""


class DecisionImportError(RiskstratError):
    """A returned worklist that cannot be imported; nothing from it is recorded."""


def decision_choices() -> list[str]:
    """The drop-down's choices, in order: the wording of every decision."""
    return list(DECISIONS.values())


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip()


def _normal(text: str) -> str:
    return " ".join(str(text).split()).casefold()


_BY_TEXT: dict[str, str] = {
    **{_normal(wording): code for code, wording in DECISIONS.items()},
    **{_normal(code): code for code in DECISIONS},
}


def decision_code(value: object) -> str | None:
    """The code of a decision cell: its wording (any case or spacing) or the code itself.

    Args:
        value: The cell's value.

    Returns:
        The code; None for a blank cell.

    Raises:
        ValueError: If the value is not a decision (its text is never put in the message).
    """
    if _blank(value):
        return None
    code = _BY_TEXT.get(_normal(str(value).lstrip("'")))
    if code is None:
        raise ValueError("not one of the coded decisions")
    return code


# ----------------------------------------------------------------------------- the issue stamp


@dataclass(frozen=True)
class Issue:
    """The list as issued, read from a workbook's stamp.

    Attributes:
        mdt: The MDT's name.
        week: Week commencing of the list.
        people: ``person_id`` (as written to the sheet), ``rank`` (int) and ``risk`` (per cent, 1 dp).
        digest: The stamp's digest as written.
    """

    mdt: str
    week: date
    people: pd.DataFrame
    digest: str


def _risk_text(value: object) -> str:
    return f"{float(value):.1f}"  # type: ignore[arg-type]


def issue_digest(mdt: str, week: date, people: Iterable[tuple[str, int, str]]) -> str:
    """SHA-256 of the MDT, week and each (person ID, rank, risk text), in rank order."""
    ordered = sorted((str(p), int(r), str(k)) for p, r, k in people)
    ordered.sort(key=lambda row: row[1])
    payload = {"mdt": mdt, "week": week.isoformat(), "people": ordered}
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def stamp_workbook(book: Workbook, *, mdt: str, week: date, rows: pd.DataFrame) -> None:
    """Add the very hidden, protected sheet that identifies the issued list.

    Deterministic (no timestamps), so the same list gives the same bytes. Only the
    pseudonymised ID, rank and risk are stamped: never an NHS number.

    Args:
        book: The list's workbook, about to be saved.
        mdt: The MDT's name.
        week: Week commencing of the list.
        rows: The rows written to the list sheet, with ``Person ID``, ``Rank`` and ``Risk (%)``.
    """
    people = [
        (inert_text(str(p)), int(r), _risk_text(k))
        for p, r, k in zip(rows[PERSON_ID], rows[RANK], rows[RISK], strict=True)
    ]
    sheet = book.create_sheet(STAMP_SHEET)
    put(sheet["A1"], "Identifies this list for the import of the MDT's decisions. Do not edit.")
    for row, (label, value) in enumerate(
        (("MDT", mdt), ("Week", week.isoformat()), ("Digest", issue_digest(mdt, week, people))), start=2
    ):
        put(sheet.cell(row=row, column=1), label)
        put(sheet.cell(row=row, column=2), value)
    for column, heading in enumerate((PERSON_ID, RANK, RISK), start=1):
        put(sheet.cell(row=STAMP_TABLE_ROW, column=column), heading)
    for row, (person, rank, risk) in enumerate(people, start=STAMP_TABLE_ROW + 1):
        put(sheet.cell(row=row, column=1), person)
        put(sheet.cell(row=row, column=2), str(rank))  # text: a re-save cannot re-type it
        put(sheet.cell(row=row, column=3), risk)
    sheet.sheet_state = "veryHidden"
    sheet.protection.sheet = True


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_stamp(book: Workbook, source: str) -> Issue:
    """The issued list as stamped in a returned workbook, its digest checked.

    Args:
        book: The returned workbook (opened with ``data_only=True``).
        source: The file's name, for messages.

    Returns:
        The issue.

    Raises:
        DecisionImportError: If there is no stamp, or it was edited.
    """
    if STAMP_SHEET not in book.sheetnames:
        raise DecisionImportError(
            f"{source}: not a worklist issued by riskstrat (its hidden '{STAMP_SHEET}' sheet is missing)",
            hint="Return the workbook riskstrat issued, with the decisions filled in; a copy pasted into a "
            "new workbook cannot be matched to its list.",
        )
    sheet = book[STAMP_SHEET]
    mdt, week_text, digest = (_text(sheet.cell(row=r, column=2).value) for r in (2, 3, 4))
    people = []
    for row in sheet.iter_rows(min_row=STAMP_TABLE_ROW + 1, max_col=3, values_only=True):
        if not _text(row[0]):
            break
        people.append((_text(row[0]), _text(row[1]), _text(row[2])))
    try:
        week = date.fromisoformat(week_text)
        parsed = [(p, int(r), _risk_text(k)) for p, r, k in people]
    except ValueError:
        week, parsed = None, []
    if week is None or issue_digest(mdt, week, parsed) != digest:
        raise DecisionImportError(
            f"{source}: its hidden '{STAMP_SHEET}' sheet was edited, so it cannot be matched to the list issued",
            hint="Return the workbook as riskstrat issued it, changing only the MDT decision column.",
        )
    frame = pd.DataFrame(parsed, columns=["person_id", "rank", "risk"])
    frame["risk"] = frame["risk"].astype(float)
    return Issue(mdt=mdt, week=week, people=frame, digest=digest)


def _heading_row(sheet: Worksheet) -> tuple[int, dict[str, int]] | None:
    for row in sheet.iter_rows(min_row=1, max_row=HEADER_SEARCH_ROWS):
        found = {_text(cell.value): cell.column for cell in row if cell.value is not None}
        if all(heading in found for heading in READ_HEADINGS):
            return row[0].row, {heading: found[heading] for heading in READ_HEADINGS}
    return None


def _list_sheets(book: Workbook) -> list[tuple[Worksheet, int, dict[str, int]]]:
    """Every visible sheet holding the list's heading row, with that row and the columns read back.

    Hidden sheets are skipped: the stamp, and any hidden copy of the list someone kept.
    """
    found = []
    for sheet in book.worksheets:
        if sheet.sheet_state != "visible" or sheet.title == STAMP_SHEET:
            continue
        heading = _heading_row(sheet)
        if heading is not None:
            found.append((sheet, *heading))
    return found


def _list_sheet(book: Workbook, source: str) -> tuple[Worksheet, int, dict[str, int]]:
    """The one visible sheet that holds the list, its heading row and the columns read back.

    Raises:
        DecisionImportError: If no visible sheet, or more than one, has the list's headings.
    """
    found = _list_sheets(book)
    if not found:
        raise DecisionImportError(
            f"{source}: no visible sheet has the list's headings ({', '.join(READ_HEADINGS)})",
            hint="Keep the list's heading row as issued; add decisions in the MDT decision column only.",
        )
    if len(found) > 1:
        names = ", ".join(f"'{sheet.title}'" for sheet, _, _ in found)
        raise DecisionImportError(
            f"{source}: {len(found)} visible sheets have the list's headings ({names}), so it is not "
            "clear which holds the MDT's decisions",
            hint="Keep the decisions on the issued list sheet and delete (or hide) the copies, then return it.",
        )
    return found[0]


def record_on_list(book: Workbook, decided: Mapping[str, str]) -> int:
    """Fill in the decision cells of an issued list, as an MDT would: person ID -> decision code.

    Used by the synthetic demo (and tests) to return decisions; people not in ``decided``
    are left blank.

    Args:
        book: The issued workbook.
        decided: Decision codes by person ID (as written on the list).

    Returns:
        How many cells were filled.

    Raises:
        DecisionImportError: If the workbook has no list, or more than one.
    """
    sheet, header, columns = _list_sheet(book, "the workbook")
    filled = 0
    for row in range(header + 1, sheet.max_row + 1):
        person = _text(sheet.cell(row=row, column=columns[PERSON_ID]).value)
        if person in decided:
            put(sheet.cell(row=row, column=columns[DECISION_HEADER]), DECISIONS[decided[person]])
            filled += 1
    return filled


def read_returned_rows(book: Workbook, source: str) -> pd.DataFrame:
    """The list's rows as returned: person, rank, risk and the decision cell, as they are.

    The list is the one visible sheet with a row holding the headings Person ID, Rank,
    Risk (%) and :data:`DECISION_HEADER` (hidden sheets, such as the stamp, are not
    read). Every row below the headings is read, to the end of the sheet's used range:
    rows left blank (a person's row deleted, or a gap) are skipped, so no decision
    below a gap is lost.

    Args:
        book: The returned workbook (opened with ``data_only=True``).
        source: The file's name, for messages.

    Returns:
        ``person_id`` (text), ``rank``, ``risk`` and ``decision`` (raw cell values).

    Raises:
        DecisionImportError: If no visible sheet has those headings, more than one has,
            or a row holds a decision but no Person ID (it cannot be matched to a person).
    """
    sheet, header, columns = _list_sheet(book, source)
    records, orphans = [], []
    for number, row in enumerate(sheet.iter_rows(min_row=header + 1, values_only=True), start=header + 1):
        cells = {h: row[c - 1] if c - 1 < len(row) else None for h, c in columns.items()}
        if not _text(cells[PERSON_ID]):
            if not _blank(cells[DECISION_HEADER]):
                orphans.append(number)
            continue
        records.append((_text(cells[PERSON_ID]), cells[RANK], cells[RISK], cells[DECISION_HEADER]))
    if orphans:
        shown = ", ".join(map(str, orphans[:5])) + (", ..." if len(orphans) > 5 else "")
        raise DecisionImportError(
            f"{source}: {len(orphans)} row{'s' if len(orphans) != 1 else ''} of sheet '{sheet.title}' "
            f"hold{'s' if len(orphans) == 1 else ''} an MDT decision but no Person ID (row {shown}), so "
            "the decision cannot be matched to a person",
            hint="Put back the Person ID of each such row as issued (or clear its decision), then return it.",
        )
    return pd.DataFrame(records, columns=["person_id", "rank", "risk", "decision"])


# ----------------------------------------------------------------------------- checking a return


def _refuse(source: str, issue: Issue, what: str, rows: pd.Series, hint: str) -> DecisionImportError:
    """The error for ``rows`` (person IDs) of a returned list: file, MDT, week, count; one ID as the example."""
    n = len(rows)
    return DecisionImportError(
        f"{source} (MDT '{issue.mdt}', week {issue.week.isoformat()}): {n:,} row{'s' if n != 1 else ''} {what}",
        hint=hint,
        details=f"e.g. person ID {rows.iloc[0]}" if n else "",
    )


def _as_number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.map(lambda v: _text(v) if isinstance(v, str) else v), errors="coerce")


def returned_decisions(
    source: str,
    source_digest: str,
    issue: Issue,
    returned: pd.DataFrame,
    published: pd.DataFrame,
    imported_at: datetime,
) -> pd.DataFrame:
    """Check a returned list against its stamp and the published list, and code its decisions.

    Args:
        source: The file's name, for messages.
        source_digest: SHA-256 of the file's bytes, recorded with each decision.
        issue: :func:`read_stamp` of the file.
        returned: :func:`read_returned_rows` of the file.
        published: The MDT's rows of that week's published ``history.parquet``
            (``person_id``, ``rank``, ``probability``); empty when the week or MDT has no list.
        imported_at: When the import runs (UTC), recorded with each decision.

    Returns:
        One row per person with a decision, with :data:`DECISION_HISTORY_COLUMNS`.

    Raises:
        DecisionImportError: If the file does not belong to a published list, or any row
            differs from it or holds an unknown decision (the whole file is refused).
    """
    where = f"MDT '{issue.mdt}', week {issue.week.isoformat()}"
    if published.empty:
        raise DecisionImportError(
            f"{source}: {where} has no published list in this outputs folder",
            hint="Check the file is one of this ICS's worklists and the outputs folder is the one that "
            "published it (a list from another MDT, week or installation cannot be imported).",
        )
    issued = pd.DataFrame(
        {
            "person_id": published["person_id"].astype(str).map(inert_text),
            "rank": published["rank"].astype("int64"),
            "risk": np.round(published["probability"].astype(float) * 100, 1),
        }
    ).sort_values("rank", ignore_index=True)
    stamped = issue.people.sort_values("rank", ignore_index=True)
    if not issued.reset_index(drop=True).equals(stamped[["person_id", "rank", "risk"]]):
        raise DecisionImportError(
            f"{source}: the list in this file is not the list published for {where} "
            "(that week was run again after this file was issued)",
            hint="Record the decisions on the list now published for that week, and return that one.",
        )
    rows = returned.copy()
    unknown = rows.loc[~rows["person_id"].isin(set(stamped["person_id"])), "person_id"]
    if len(unknown):
        raise _refuse(
            source,
            issue,
            "not on the list issued",
            unknown,
            "Rows cannot be added to a list: record decisions only on the people it lists.",
        )
    twice = rows.loc[rows["person_id"].duplicated(), "person_id"]
    if len(twice):
        raise _refuse(
            source,
            issue,
            "repeat a person already listed above",
            twice,
            "Keep one row per person, as issued.",
        )
    expected = stamped.set_index("person_id")
    rank = _as_number(rows["rank"])
    risk = _as_number(rows["risk"]).round(1)
    changed = (rank != rows["person_id"].map(expected["rank"])) | (
        risk != rows["person_id"].map(expected["risk"])
    )
    if changed.any():
        raise _refuse(
            source,
            issue,
            "with a rank or risk that differs from the list issued",
            rows.loc[changed, "person_id"],
            "Change only the MDT decision column; undo other edits (or start from the issued file).",
        )
    codes, bad = [], []
    for person, value in zip(rows["person_id"], rows["decision"], strict=True):
        try:
            codes.append(decision_code(value))
        except ValueError:
            codes.append(None)
            bad.append(person)
    if bad:
        raise _refuse(
            source,
            issue,
            "with an MDT decision that is not one of the choices",
            pd.Series(bad),
            f"Pick from the drop-down: {'; '.join(decision_choices())}. Keep notes in your own records.",
        )
    rows["decision"] = codes
    rows = rows.loc[rows["decision"].notna()]
    by_person = published.assign(person_id=published["person_id"].astype(str).map(inert_text)).set_index(
        "person_id"
    )
    original_ids = pd.Series(published["person_id"].astype(str).to_numpy(), index=by_person.index)
    return pd.DataFrame(
        {
            "person_id": rows["person_id"].map(original_ids).astype(str),
            "mdt": issue.mdt,
            "week": issue.week.isoformat(),
            "decision": rows["decision"].astype(str),
            "issued_probability": rows["person_id"].map(by_person["probability"]).astype("float64"),
            "imported_at": pd.Timestamp(imported_at.replace(tzinfo=None)),  # UTC, stored naive
            "source_digest": source_digest,
        },
        columns=list(DECISION_HISTORY_COLUMNS),
    ).reset_index(drop=True)


def empty_decision_history() -> pd.DataFrame:
    """A decision history with no rows, typed as written."""
    return pd.DataFrame(
        {
            "person_id": pd.Series(dtype="object"),
            "mdt": pd.Series(dtype="object"),
            "week": pd.Series(dtype="object"),
            "decision": pd.Series(dtype="object"),
            "issued_probability": pd.Series(dtype="float64"),
            "imported_at": pd.Series(dtype="datetime64[us]"),
            "source_digest": pd.Series(dtype="object"),
        }
    )


def _unchanged(history: pd.DataFrame, new: pd.DataFrame) -> np.ndarray:
    """Which rows of ``new`` the history already holds with the same decision."""
    key = ["mdt", "week", "person_id"]
    if history.empty or new.empty:
        return np.zeros(len(new), dtype=bool)
    current = history.set_index(key)["decision"]
    incoming = new.set_index(key)["decision"]
    return (incoming.index.isin(current.index) & (current.reindex(incoming.index) == incoming)).to_numpy()


def new_or_changed(history: pd.DataFrame, new: pd.DataFrame) -> int:
    """How many of ``new``'s decisions the history does not already hold (0: importing changes nothing)."""
    return int((~_unchanged(history, new)).sum())


def merge_decisions(history: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The decision history with ``new`` decisions added: one decision per MDT, week and person.

    A decision already recorded with the same code is kept as it was (so importing a
    file twice, or a corrected file that repeats it, changes nothing); a different code
    replaces it; people the new file leaves blank keep theirs.

    Args:
        history: The decision history (:data:`DECISION_HISTORY_COLUMNS`).
        new: Coded decisions (:func:`returned_decisions`), one per MDT, week and person.

    Returns:
        The new history, sorted by MDT, week and person.
    """
    key = ["mdt", "week", "person_id"]
    changed = new.loc[~_unchanged(history, new)]
    if changed.empty:
        return history
    if history.empty:
        return changed.sort_values(key, ignore_index=True)[list(DECISION_HISTORY_COLUMNS)]
    replaced = history.set_index(key).index.isin(changed.set_index(key).index)
    merged = pd.concat([history.loc[~replaced], changed], ignore_index=True)
    return merged.sort_values(key, ignore_index=True)[list(DECISION_HISTORY_COLUMNS)]
