"""Writing the weekly lists: per MDT an XLSX and a CSV, plus ``manifest.json``, all or nothing.

The week's folder also holds ``history.parquet`` (:mod:`riskstrat.worklists.history`) and
``assignment.parquet``, the cut-off record for the impact evaluation
(:mod:`riskstrat.worklists.assignment`: recorded, never shown), both listed in the manifest.

Everything goes under ``<output_dir>/worklists/<week>/`` through
:func:`riskstrat.io.atomic_directory`, so a failed run leaves the previous
outputs as they were. Files are deterministic: the same input gives the same
CSV bytes (and the XLSX is written with fixed timestamps, so its bytes and the
manifest repeat too). IDs stay pseudonymised; when a re-identification key is
configured the NHS number is added to the XLSX and CSV only, never to the
manifest, the history or logs.

No text from an extract or a setting ever becomes a formula: every text cell of
every sheet, the printed header and footer and every CSV cell go through one
rule, :mod:`riskstrat.worklists.cells` (control characters shown as U+FFFD, a
single quote in front of text starting like a formula, text always stored as
text).

The workbook is made to be opened in Excel or LibreOffice Calc and printed on A4:

- The Worklist sheet's printed columns (:data:`PRINT_WIDTHS`) come first, in fixed
  widths, wrapped, and the print area stops after them; the other columns are to
  their right, on screen only. It prints landscape, one page wide, with the column
  headings repeated on every page. Rows get explicit heights worked out from their
  wrapped text (:func:`fit_row_heights`): Calc does not fit heights on opening, so
  without them wrapped text would overprint the next row.
- Every printed header and footer section is short, so none runs into another: the
  protective marking alone in the centre of the header, the MDT and the week beside
  it, and in the footer the data date, the caveat "check the person's record before
  contacting them" and the page number.
- Every cell has a named font (:data:`FONT_NAME`), so no viewer falls back to a
  serif face.
- The MDT records its decision in the "MDT decision" column (a drop-down of
  :data:`riskstrat.worklists.decisions.DECISIONS`); the issued list is stamped so
  that a returned workbook can be checked.

The CSV starts with :data:`CSV_PREAMBLE_LINES` lines, each one quoted field
beginning ``# `` (marking; MDT, week and data date; caveat), so the marking is
the first thing a spreadsheet shows; :func:`read_list_csv` (or
``pandas.read_csv(path, skiprows=3)``) reads the rows.
"""

from __future__ import annotations

import functools
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import matplotlib
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.utils.indexed_list import IndexedList
from openpyxl.worksheet.datavalidation import DataValidation

from riskstrat.catalog import output_catalog
from riskstrat.errors import RiskstratError
from riskstrat.features.outcomes import outcome_names, outcome_wording
from riskstrat.features.settings import OutcomeSettings
from riskstrat.ingest.contract import SOCIAL_CARE_RETURN_DUE_DAYS
from riskstrat.ingest.social_care import (
    ReturnsCoverage,
    data_cutoff,
    local_authority_name,
    quarter_label,
    quarter_start,
)
from riskstrat.io import atomic_directory, file_sha256
from riskstrat.worklists import decisions
from riskstrat.worklists.cells import header_footer_text, inert_frame, inert_text, put, seal_workbook
from riskstrat.worklists.decisions import DECISION_HEADER, DECISIONS
from riskstrat.worklists.history import LEAVER_REASONS, LEFT_CASELOAD, left_by_decision
from riskstrat.worklists.rows import LAST_DECISION, SOCIAL_CARE, column_note, missing_quarters
from riskstrat.worklists.settings import Mdt, RiskBandSettings

LIST_SHEET = "Worklist"
ABOUT_SHEET = "About this list"
LEFT_SHEET = "Left the list"
HEADER_ROW = 5
"""Row of the column headings on the list sheet (title rows above it)."""
MANIFEST = "manifest.json"


def outcome_wordings(settings: OutcomeSettings | None = None) -> dict[str, str]:
    """What each registered outcome's list ranks by, worded with ``settings`` (default: the defaults).

    E.g. ``{"emergency_admission": "an emergency hospital admission (or death) in the next 12 months"}``.
    """
    settings = settings or OutcomeSettings()
    return {name: outcome_wording(name, settings) for name in outcome_names()}


INTENDED_USE = (
    "For the MDT's weekly review of whom to discuss for a holistic assessment, care plan or "
    "virtual-ward bed. It ranks people registered with this MDT's practices by predicted risk "
    "and gives the factors that raise each person's risk most. The model sees only coded "
    "records, can be wrong, and knows nothing of the person's wishes or what is already in place. "
    "People not on the list may still need care. Equal risks are ordered by a fixed hash of the "
    "pseudonymised ID, not by any personal characteristic."
)
CLINICAL_JUDGEMENT = "This list supports clinical judgement and does not replace it."
PROTECTIVE_MARKING = "OFFICIAL-SENSITIVE: personal data"
"""Marking in the printed header and footer of every sheet."""
CHECK_RECORD = "Check the person's record before contacting them"
"""The caveat printed at the foot of every page."""
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_WIDTH_LIMITS = (8, 60)

FONT_NAME = "Arial"
"""Named on every cell: Calc shows it as Liberation Sans (same widths), never a serif fallback."""
BODY_SIZE = 10
"""Points of the table text; the list prints at about 80% of it, fitted one page wide."""
PRINT_WIDTHS: dict[str, float] = {
    "Rank": 5,
    "Person ID": 11.5,
    "NHS number": 12,
    "Practice": 7.5,
    "Risk (%)": 6,
    "Risk band": 8.5,
    "Reason 1": 13,
    "Reason 2": 13,
    "Reason 3": 13,
    "Reason 4": 13,
    "Reason 5": 13,
    "Age band": 6,
    "Frailty": 11,
    "Main long-term conditions": 13,
    "Last emergency admission": 10.5,
    "Community services (90 days)": 11,
    # Words that must fit one line: "Wolverhampton's" (social care) and "Neighbourhood" (a caseload
    # team's name); the decision is written in by hand.
    SOCIAL_CARE: 15,
    "On caseload": 14,
    "Change since last week": 7,
    LAST_DECISION: 11,
    DECISION_HEADER: 16,
}
"""The Worklist sheet's printed columns, in print order, and their widths (characters).

The other columns (sex, number of conditions, care home, A&E, GP appointments, weeks on
list) follow on screen only: with them, one page wide would print at under 7 points. With the
social care column (when the ICS supplies social care data) the printed columns add up to 192
units, which LibreOffice prints at about 80% (8 points); the other columns gave a little room to
it, the wrapping reasons most (never the caseload team, whose words must not break, nor the
hand-written decision box)."""
CSV_PREAMBLE_LINES = 3
"""Lines before the CSV's heading row, each a quoted field starting '# ' (marking; MDT, week and data date; caveat)."""
_DIGIT_EM = 0.556
"""Width of a digit in Arial, in ems: a unit of column width is one digit of the default font."""
_FILL = 0.94
"""Share of a column's width that wrapped text may fill (the rest is the cell's padding, and a margin)."""
_LINE_HEIGHT = 1.2
"""Row height per line of text, in points per point of font size (Arial's line is 1.15 em)."""
_ROW_PADDING = 3
"""Points added to each row's height."""
_HEADER_CODES = f'&"{FONT_NAME},Regular"&8'
"""Font codes in front of each printed header and footer section."""


@dataclass(frozen=True)
class RunInfo:
    """What the week's outputs were made from (written into titles and the manifest)."""

    week: date
    data_date: date
    model_versions: Mapping[str, str]
    extract_snapshot_hash: str
    settings_hash: str
    risk_bands: RiskBandSettings
    outcome_wordings: Mapping[str, str] = field(default_factory=outcome_wordings)
    """What each outcome's list ranks by, worded with the run's outcome settings."""
    models_trained: Mapping[str, date] = field(default_factory=dict)
    """Outcome -> the day its model was trained, shown on the list when known."""
    social_care: ReturnsCoverage | None = None
    """The local authorities' social care returns at the data date; None: the ICS supplies no social care data."""


@dataclass
class MdtOutput:
    """One MDT's rows, leavers and aggregate counts, ready to write.

    Attributes:
        previous_week: Week of the MDT's last published list the leavers are measured
            against; None when there is none (the MDT's first week).
        lottery_seed: The seed of this week's draw for the last places ("" when there was
            none); with ``counts["lottery_pool"]`` and ``counts["lottery_drawn"]`` it goes into
            the manifest and the About sheet, never who was drawn.
    """

    mdt: Mdt
    rows: pd.DataFrame
    leavers: pd.DataFrame
    counts: Mapping[str, int] = field(default_factory=dict)
    previous_week: date | None = None
    lottery_seed: str = ""


def read_reidentification_key(path: Path) -> pd.Series:
    """Read the person_id -> NHS number key (CSV or Parquet).

    Args:
        path: The key file with ``person_id`` and ``nhs_number``.

    Returns:
        NHS numbers formatted "999 999 9999", indexed by person_id.

    Raises:
        RiskstratError: If the file is missing or lacks a column (its values are never shown).
    """
    path = Path(path)
    if not path.is_file():
        raise RiskstratError(
            f"re-identification key not found: {path}",
            hint="Set reidentification_key in configs/mdts.yaml to the key file, or leave it empty.",
        )
    if path.suffix.lower() == ".parquet":
        key = pd.read_parquet(path)
    else:
        key = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("person_id", "nhs_number") if c not in key.columns]
    if missing:
        raise RiskstratError(
            f"{path}: missing column(s) {', '.join(missing)}",
            hint="The re-identification key needs person_id and nhs_number columns.",
        )
    digits = key["nhs_number"].astype(str).str.replace(r"\D", "", regex=True)
    formatted = digits.where(
        digits.str.len() != 10, digits.str[:3] + " " + digits.str[3:6] + " " + digits.str[6:]
    )
    return pd.Series(formatted.to_numpy(), index=key["person_id"].astype(str).to_numpy(), name="nhs_number")


def with_nhs_number(frame: pd.DataFrame, nhs_numbers: pd.Series | None, id_column: str) -> pd.DataFrame:
    """Insert an "NHS number" column after ``id_column`` (unchanged if no key is configured)."""
    if nhs_numbers is None:
        return frame
    out = frame.copy()
    position = list(out.columns).index(id_column) + 1
    values = out[id_column].astype(str).map(nhs_numbers)
    out.insert(position, "NHS number", values.fillna("").astype(str).to_numpy())
    return out


def leavers_table(leavers: pd.DataFrame) -> pd.DataFrame:
    """The 'Left the list' rows with their headings (risk this week is blank when not scored)."""
    return pd.DataFrame(
        {
            "Person ID": leavers["person_id"].astype(str).to_numpy(),
            "Practice": leavers["practice_code"].fillna("").astype(str).to_numpy(),
            "Rank last week": leavers["previous_rank"].astype("int64").to_numpy(),
            "Risk last week (%)": (leavers["previous_probability"].astype(float) * 100).round(1).to_numpy(),
            "Risk this week (%)": (leavers["probability"].astype(float) * 100).round(1).to_numpy(),
            "Why they left": leavers["reason"].astype(str).to_numpy(),
        }
    )


def csv_preamble(mdt: Mdt, info: RunInfo) -> list[str]:
    """The :data:`CSV_PREAMBLE_LINES` lines that head an MDT's CSV: each one quoted field starting '# '.

    Each line is one quoted CSV field, so a spreadsheet shows it in one cell whatever it
    holds: a comma or semicolon in the MDT's name cannot start a new cell, which could
    begin like a formula.
    """
    about = f"{list_title(mdt, info)}; records up to {info.data_date.isoformat()} (data date)"
    lines = [
        PROTECTIVE_MARKING,
        about,
        f"{CLINICAL_JUDGEMENT} {CHECK_RECORD}: deaths, admissions and other events after the data date "
        "are not known to the list.",
    ]
    # One line each whatever the MDT's name holds (a line break would shift the heading row).
    fields = ("# " + re.sub(r"\s+", " ", inert_text(line)) for line in lines)
    return ['"' + field.replace('"', '""') + '"' for field in fields]


def write_csv(rows: pd.DataFrame, path: Path, preamble: list[str] | None = None) -> None:
    """Write the rows as UTF-8 CSV, LF line ends, ISO dates, risk to 1 dp: same input, same bytes.

    Every text value and heading is made inert first (:mod:`riskstrat.worklists.cells`).

    Args:
        rows: The list rows.
        path: The file to write.
        preamble: Lines written before the heading row (:func:`csv_preamble`); read the file
            with :func:`read_list_csv`, or ``pandas.read_csv(path, skiprows=3)``.
    """
    out = rows.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, date)).any():
            out[column] = [v.isoformat() if isinstance(v, date) else "" for v in out[column]]
    text = inert_frame(out).to_csv(index=False, lineterminator="\n", float_format="%.1f")
    head = "".join(f"{line}\n" for line in preamble or [])
    path.write_bytes((head + text).encode("utf-8"))


def read_list_csv(path: Path, **kwargs) -> pd.DataFrame:
    """Read a list's CSV, skipping its preamble (``kwargs`` go to :func:`pandas.read_csv`).

    Elsewhere: ``pandas.read_csv(path, skiprows=3)``; in R ``read.csv(path, skip = 3)``.
    (``comment="#"`` does not work: each preamble line is a quoted field.)
    """
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        head = zip(range(CSV_PREAMBLE_LINES), handle, strict=False)
        skip = sum(1 for _, line in head if line.startswith('"#'))
    return pd.read_csv(path, skiprows=skip, **kwargs)


def model_line(info: RunInfo, outcome: str) -> str:
    """'Model version 2, trained 14 December 2025; data to 28 December 2025' for an MDT's outcome.

    The registry's "<name> v<version>" label gives the version; the training date is shown
    when :attr:`RunInfo.models_trained` holds it.
    """
    label = info.model_versions.get(outcome, "")
    match = re.search(r"\bv(\d+)\s*$", label)
    model = (
        f"Model version {match.group(1)}" if match else (f"Model {label}" if label else "Model not recorded")
    )
    trained = info.models_trained.get(outcome)
    if trained is not None:
        model += f", trained {trained.strftime('%d %B %Y')}"
    return f"{model}; data to {info.data_date.strftime('%d %B %Y')}"


def _font(
    bold: bool = False, italic: bool = False, size: float = BODY_SIZE, color: str | None = None
) -> Font:
    """A font with its name set (an unnamed font falls back to a serif face in some viewers)."""
    return Font(name=FONT_NAME, size=size, bold=bold, italic=italic, color=color)


@functools.lru_cache(maxsize=2)
def _advance_widths(bold: bool) -> dict[str, float]:
    """Helvetica's character widths in ems (Arial and Liberation Sans share them), from matplotlib's AFM file."""
    name = "phvb8a.afm" if bold else "phvr8a.afm"
    widths: dict[str, float] = {}
    for line in (Path(matplotlib.get_data_path()) / "fonts" / "afm" / name).read_text("latin-1").splitlines():
        fields = dict(part.strip().split(" ", 1) for part in line.split(";") if part.strip().count(" "))
        if line.startswith("C ") and int(fields["C"]) > 0:
            widths[chr(int(fields["C"]))] = float(fields["WX"]) / 1000
    return widths


def text_width(text: str, bold: bool = False) -> float:
    """Width of ``text`` in Arial, in ems (a character Helvetica lacks counts as a wide letter)."""
    widths = _advance_widths(bold)
    return sum(widths.get(char, 0.75) for char in text)


def text_lines(text: str, width: float, size: float = BODY_SIZE, bold: bool = False) -> int:
    """Lines ``text`` wraps to at word breaks in a column ``width`` units wide, in Arial at ``size`` points.

    Calc and Excel wrap at spaces and break a word longer than the line; this measures the
    words with the font's own widths, on the safe side (:data:`_FILL`).
    """
    room = width * _DIGIT_EM * BODY_SIZE / size * _FILL
    space = text_width(" ", bold)
    lines = 0
    for paragraph in text.split("\n"):
        lines += 1
        used = 0.0
        for word in paragraph.split():
            wide = text_width(word, bold)
            if used and used + space + wide <= room:
                used += space + wide
                continue
            if used:
                lines += 1
            while wide > room:  # a word longer than the line is broken
                lines += 1
                wide -= room
            used = wide
    return max(lines, 1)


def _column_width(sheet, column: int) -> float:
    width = sheet.column_dimensions[get_column_letter(column)].width
    return float(width) if width else 8.43  # the spreadsheet default


def fit_row_heights(sheet) -> None:
    """Give every row an explicit height from its wrapped text (Calc does not fit them on opening).

    A wrapped cell takes as many lines as its text needs in its column's width (a
    merged cell: the merged columns' width); other cells one line.
    """
    merged = {
        (r.min_row, r.min_col): sum(_column_width(sheet, c) for c in range(r.min_col, r.max_col + 1))
        for r in sheet.merged_cells.ranges
    }
    for row in sheet.iter_rows():
        points = 0.0
        for cell in row:
            if cell.value is None:
                continue
            size = float(cell.font.size or BODY_SIZE)
            lines = 1
            if cell.alignment is not None and cell.alignment.wrap_text:
                text = cell.value.strftime("%d/%m/%Y") if isinstance(cell.value, date) else str(cell.value)
                width = merged.get((cell.row, cell.column), _column_width(sheet, cell.column))
                lines = text_lines(text, width, size, bool(cell.font.bold))
            points = max(points, lines * size * _LINE_HEIGHT + _ROW_PADDING)
        if points:
            sheet.row_dimensions[row[0].row].height = round(points, 1)


def new_workbook() -> Workbook:
    """An empty workbook whose default font is :data:`FONT_NAME` (unstyled and empty cells use it)."""
    book = Workbook()
    default = Font(name=FONT_NAME, size=BODY_SIZE)
    # Before any cell is styled: cells refer to fonts by their place in this list.
    book._fonts = IndexedList([default])
    book._named_styles["Normal"].font = default
    return book


def name_fonts(book: Workbook) -> None:
    """Name the font of every cell that has a value (:data:`FONT_NAME`), keeping its size and weight."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.value is not None and cell.font.name != FONT_NAME:
                    font = cell.font
                    cell.font = Font(
                        name=FONT_NAME,
                        size=font.size or BODY_SIZE,
                        bold=font.bold,
                        italic=font.italic,
                        color=font.color,
                    )


def _fit_widths(sheet, frame: pd.DataFrame, first_row: int) -> None:
    for index, column in enumerate(frame.columns, start=1):
        values = [str(column)] + [
            v.strftime("%d/%m/%Y") if isinstance(v, date) else str(v) for v in frame[column].tolist()[:500]
        ]
        width = max(len(v) for v in values) + 2
        sheet.column_dimensions[get_column_letter(index)].width = min(
            max(width, _WIDTH_LIMITS[0]), _WIDTH_LIMITS[1]
        )
        if width > _WIDTH_LIMITS[1]:
            for row in sheet.iter_rows(min_row=first_row + 1, min_col=index, max_col=index):
                row[0].alignment = Alignment(wrap_text=True, vertical="top")


def _write_table(
    sheet,
    frame: pd.DataFrame,
    header_row: int,
    frozen_columns: int = 0,
    widths: Mapping[str, float] | None = None,
) -> None:
    """Write ``frame`` under its headings; ``widths`` fixes (and wraps) those columns, the rest fit their text."""
    bold = _font(bold=True, color="FFFFFF")
    body = _font()
    fill = PatternFill("solid", fgColor="005EB8")  # NHS blue
    widths = widths or {}
    for col, heading in enumerate(frame.columns, start=1):
        cell = put(sheet.cell(row=header_row, column=col), str(heading))
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    wrapped = Alignment(wrap_text=True, vertical="top")
    for r, record in enumerate(frame.itertuples(index=False), start=header_row + 1):
        for col, value in enumerate(record, start=1):
            heading = frame.columns[col - 1]
            cell = put(sheet.cell(row=r, column=col), value)
            cell.font = body
            if heading in widths:
                cell.alignment = wrapped
            value = cell.value
            if isinstance(value, date):
                cell.number_format = "DD/MM/YYYY"
            elif "(%)" in heading:
                cell.number_format = "0.0"
            elif isinstance(value, int):
                cell.number_format = "0"
    last_row = header_row + max(len(frame), 1)
    sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(max(len(frame.columns), 1))}{last_row}"
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=frozen_columns + 1)
    _fit_widths(sheet, frame, header_row)
    for col, heading in enumerate(frame.columns, start=1):
        if heading in widths:
            sheet.column_dimensions[get_column_letter(col)].width = widths[heading]


def identity_columns(frame: pd.DataFrame) -> int:
    """How many leading columns say who a row is: up to Person ID, or NHS number when present."""
    names = list(frame.columns)
    return max((names.index(c) + 1 for c in ("Person ID", "NHS number") if c in names), default=0)


def _short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, so a header section cannot reach the next."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


HEADER_SECTION_CHARACTERS = 48
"""Characters a printed header or footer section may hold: a third of an A4 landscape line at 8 points."""


def _set_up_printing(
    sheet, header_row: int, mdt: Mdt, info: RunInfo, print_columns: int | None = None
) -> None:
    """A4 landscape, one page wide, the table's header row on every page, a marked header and footer.

    Each header and footer section is short enough not to reach the next (at most
    :data:`HEADER_SECTION_CHARACTERS`), in 8-point :data:`FONT_NAME`: the marking alone in the
    centre of the header with the MDT and the week either side, and the data date, the caveat
    and the page number in the footer.

    Args:
        sheet: The sheet.
        header_row: Row of the table's headings (repeated on every page).
        mdt: The MDT.
        info: The week and data date.
        print_columns: Print only the first this many columns (None: every column).
    """
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as the sheet needs
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.gridLines = True  # rows stay apart on paper
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.page_margins.top = sheet.page_margins.bottom = 0.6
    sheet.page_margins.header = sheet.page_margins.footer = 0.25
    sheet.print_title_rows = f"{header_row}:{header_row}"
    if print_columns:
        sheet.print_area = f"A1:{get_column_letter(print_columns)}{max(sheet.max_row, header_row)}"
    limit = HEADER_SECTION_CHARACTERS
    sections = {
        sheet.oddHeader.left: _short(mdt.name, limit),
        sheet.oddHeader.center: PROTECTIVE_MARKING,
        sheet.oddHeader.right: f"Week of {info.week.strftime('%d %B %Y')}",
        sheet.oddFooter.left: f"Records up to {info.data_date.strftime('%d %B %Y')}",
        sheet.oddFooter.center: CHECK_RECORD,
        sheet.oddFooter.right: "Page &P of &N",
    }
    for part, text in sections.items():
        part.text = (
            text if "&P" in text else header_footer_text(text, beside=(_HEADER_CODES * 3, "x" * limit * 2))
        )
        part.font = f"{FONT_NAME},Regular"
        part.size = 8


def list_title(mdt: Mdt, info: RunInfo) -> str:
    """Title of an MDT's list: the MDT and the week."""
    return f"{mdt.name}: worklist for the week of {info.week.strftime('%d %B %Y')}"


def data_date_caution(data_date: date) -> str:
    """The warning that the list knows nothing after its data date."""
    return (
        f"The list uses records up to {data_date.strftime('%d %B %Y')}. Deaths, admissions and "
        "other events after that date are not known to it: check the person's record before "
        "contacting them."
    )


def _people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


def how_list_was_made(output: MdtOutput, wordings: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """How an MDT's list was drawn up, from its own settings and this week's counts.

    Args:
        output: The MDT's output (its resolved MDT, rows and counts).
        wordings: What each outcome's list ranks by (:attr:`RunInfo.outcome_wordings`;
            default: worded with the default outcome settings).

    Returns:
        (topic, explanation) pairs in the order the rules apply.
    """
    mdt, counts = output.mdt, output.counts
    wordings = wordings or outcome_wordings()

    def excluded(rule: str) -> str:
        return _people(int(counts.get(f"excluded_{rule}", 0)))

    caseload_people = "people already on an active virtual-ward or proactive-care caseload"
    if mdt.exclusions.type1_opt_out == "exclude":
        opt_out = (
            "Excluded: people with a type 1 opt-out recorded at their practice are removed before "
            "anything else, without a trace: they are not counted on this sheet, not ranked, and "
            f"not shown on '{LEFT_SHEET}', even if an earlier list held them."
        )
    else:
        opt_out = (
            "Included: people with a type 1 opt-out are listed, as the ICS's data protection "
            "impact assessment allows for direct care."
        )
    caseload = {
        "exclude": f"Excluded: {caseload_people} are left off ({excluded('active_caseload')}).",
        "flag": (
            f"Flagged: {caseload_people} are listed, with the team in the 'On caseload' column "
            f"({_people(_flagged(output.rows))} on this list)."
        ),
        "include": f"Included: {caseload_people} are listed like anyone else, without a flag.",
    }[mdt.exclusions.active_caseload]
    capacity = int(counts.get("capacity", len(output.rows)))
    share = ""
    if mdt.capacity_people is None and mdt.capacity_share is not None:
        share = f": {_plain_number(mdt.capacity_share * 100)}% of the people registered, rounded up"
    listed = (
        f"The top {capacity:,} by predicted risk of {wordings[mdt.outcome]} "
        f"(this MDT's weekly capacity{share})."
    )
    if len(output.rows) < capacity:
        listed += f" Only {_people(len(output.rows))} were eligible, so the list is shorter."
    if output.lottery_seed:
        drawn = int(counts.get("lottery_drawn", 0))
        listed = (
            f"The top {capacity - drawn:,} by predicted risk of {wordings[mdt.outcome]}, and {drawn:,} more "
            f"drawn at random from the {int(counts.get('lottery_pool', 0)):,} people ranked next, whose risk "
            f"is nearly the same (this MDT's weekly capacity is {capacity:,}{share}). The draw is seeded and "
            "recorded; the list shows everyone in risk order, so it does not say who was drawn, and people "
            "not drawn are not shown (not on 'Left the list' either)."
        )
    younger = int(counts.get("excluded_below_age_floor", 0))
    made = [
        (
            "Registered",
            f"{_people(int(counts.get('registered', 0)))} in this week's scored population are registered "
            f"with this MDT's practices ({', '.join(mdt.practices)}). The scored population is the model's "
            "cohort at the data date: people alive and registered, of the cohort's ages (adults by default).",
        ),
    ]
    # Usually none: the cohort already leaves out people who had died or left by the data date.
    if int(counts.get("excluded_deceased", 0)) or int(counts.get("excluded_deregistered", 0)):
        made.append(
            (
                "Always left off",
                f"People who had died ({excluded('deceased')}) or were no longer registered "
                f"({excluded('deregistered')}) by the data date.",
            )
        )
    made += [
        (
            "Minimum age",
            f"{mdt.min_age} years at the data date; younger people are left off ({_people(younger)})."
            if younger
            else f"{mdt.min_age} years at the data date (no one younger is in the scored population).",
        ),
        ("No risk score", f"People without a predicted risk are left off ({excluded('no_score')})."),
        ("Type 1 opt-out", opt_out),
        ("Active caseload", caseload),
    ]
    if "excluded_rested" in counts:  # the decision rules ran this week
        by_decision = sum(int(counts.get(f"excluded_{rule}", 0)) for rule in decisions.DECISION_EXCLUSIONS)
        made.append(
            (
                "After an MDT decision",
                "People left off for some weeks after this MDT's decision about them: 'Added to caseload "
                "/ virtual ward' (in the caseload's care, they take no place), or 'Not appropriate now', "
                "'Declined' or 'Already known to a service' unless their risk has risen by the set amount "
                f"since ({_people(by_decision)}).",
            )
        )
    made += [
        ("Eligible", f"{_people(int(counts.get('eligible', len(output.rows))))} after these rules."),
        ("Listed", listed),
    ]
    return made


def _flagged(rows: pd.DataFrame) -> int:
    if "On caseload" not in rows:
        return 0
    return int((rows["On caseload"].fillna("").astype(str) != "").sum())


def _plain_number(value: float) -> str:
    """A number without float noise or trailing zeros (0.5, 98)."""
    return f"{round(value, 6):g}"


def _band_range(basis: str, low: float, high: float | None) -> str:
    """A band from ``low`` up to, not including, ``high`` (None: no upper bound), in words."""
    if basis == "probability":
        start = f"Predicted risk {_plain_number(low * 100)}%"
        return f"{start} or more." if high is None else f"{start} to below {_plain_number(high * 100)}%."
    top = f"Risk in the top {_plain_number(100 - low)}% of everyone scored across the ICS"
    if high is None:
        return f"{top} (percentile {_plain_number(low)} or above)."
    return (
        f"{top} but not the top {_plain_number(100 - high)}% "
        f"(percentile {_plain_number(low)} to below {_plain_number(high)})."
    )


def risk_band_definitions(bands: RiskBandSettings) -> list[tuple[str, str]]:
    """What puts a person in each risk band, from the settings, highest band first.

    Args:
        bands: The risk band settings.

    Returns:
        (band name, definition) pairs, ending with the band of everyone below the rest.
    """
    out: list[tuple[str, str]] = []
    upper: float | None = None
    for band in bands.bands:
        out.append((band.name, _band_range(bands.basis, band.min, upper)))
        upper = band.min
    lowest = bands.bands[-1].min
    below = (
        f"Risk below the top {_plain_number(100 - lowest)}% (below percentile {_plain_number(lowest)})."
        if bands.basis == "percentile"
        else f"Predicted risk below {_plain_number(lowest * 100)}%."
    )
    return [*out, (bands.otherwise, below)]


def risk_band_basis(bands: RiskBandSettings) -> str:
    """What the risk bands compare, in words."""
    if bands.basis == "percentile":
        return (
            "Percentile: the person's place among everyone scored across the ICS on this list's "
            "outcome at the data date (99.5 = top 0.5%), so a band means the same in every MDT."
        )
    return "The predicted risk itself, the same in every MDT."


def _write_section(sheet, row: int, title: str, pairs: list[tuple[str, str]]) -> int:
    """A bold title, then one (topic, text) pair a row from the next row; returns the next free row."""
    put(sheet.cell(row=row, column=1), title).font = _font(bold=True)
    for r, (topic, text) in enumerate(pairs, start=row + 1):
        put(sheet.cell(row=r, column=1), topic).alignment = Alignment(wrap_text=True, vertical="top")
        put(sheet.cell(row=r, column=2), text).alignment = Alignment(wrap_text=True, vertical="top")
    return row + len(pairs) + 1


def _write_about(about, output: MdtOutput, rows: pd.DataFrame, info: RunInfo) -> int:
    """Fill the 'About this list' sheet; returns the row of the column table's headings."""
    about.column_dimensions["A"].width = 30
    about.column_dimensions["B"].width = 100
    put(about["A1"], "About this list").font = _font(bold=True, size=14)
    put(about["A2"], "Intended use").font = _font(bold=True)
    put(about["A3"], INTENDED_USE).alignment = Alignment(wrap_text=True, vertical="top")
    about.merge_cells("A3:B3")
    put(about["A4"], CLINICAL_JUDGEMENT).font = _font(bold=True)
    put(about["A5"], data_date_caution(info.data_date)).font = _font(bold=True)
    about["A5"].alignment = Alignment(wrap_text=True, vertical="top")
    about.merge_cells("A5:B5")
    row = _write_section(about, 7, "How this list was made", how_list_was_made(output, info.outcome_wordings))
    row = _write_section(
        about, row + 1, SOCIAL_CARE_DATA, social_care_notes(info.social_care, info.data_date)
    )
    bands = [("Basis", risk_band_basis(info.risk_bands)), *risk_band_definitions(info.risk_bands)]
    row = _write_section(about, row + 1, "Risk bands", bands)
    notes = leaver_notes(output.mdt, lottery=bool(output.lottery_seed))
    header = _write_section(about, row + 1, f"Why people are on '{LEFT_SHEET}'", notes) + 1
    put(about.cell(row=header, column=1), "Column").font = _font(bold=True)
    put(about.cell(row=header, column=2), "What it means").font = _font(bold=True)
    # The reason columns share one note, given once ("Reason 1 to Reason 3").
    reasons = [str(c) for c in rows.columns if str(c).startswith("Reason ")]
    notes = [
        (str(column), column_note(str(column)))
        for column in rows.columns
        if not str(column).startswith("Reason ") or str(column) == reasons[0]
    ]
    if len(reasons) > 1:
        notes = [(f"{reasons[0]} to {reasons[-1]}", n) if c == reasons[0] else (c, n) for c, n in notes]
    notes.append((DECISION_HEADER, DECISION_NOTE))
    for r, (column, note) in enumerate(notes, start=header + 1):
        put(about.cell(row=r, column=1), column).alignment = Alignment(wrap_text=True, vertical="top")
        put(about.cell(row=r, column=2), note).alignment = Alignment(wrap_text=True, vertical="top")
    return header


SOCIAL_CARE_DATA = "Social care data"
"""Title of the About sheet's section on where the social care context came from."""
MISSING_QUARTERS_SHOWN = 8
"""Missing quarters named per local authority on the About sheet; older ones are counted."""


def social_care_notes(returns: ReturnsCoverage | None, data_date: date) -> list[tuple[str, str]]:
    """Where the "Social care" column came from and how current it is, for the About sheet.

    Args:
        returns: The local authorities' returns at the data date
            (:func:`riskstrat.ingest.social_care.social_care_returns`); None when the ICS
            supplies no social care data.
        data_date: The list's data date.

    Returns:
        (topic, explanation) pairs: the source, how current it can be, then one per local
        authority with its latest quarter received and the quarters not received.
    """
    if returns is None:
        return [
            (
                "Not supplied",
                f"This ICS supplies no social care data, so the list has no '{SOCIAL_CARE}' column and "
                "knows nothing of care packages, reablement or carers.",
            )
        ]
    latest_due = quarter_start(data_cutoff(data_date))
    notes = [
        (
            "Source",
            "Adult Social Care Client Level Data (CLD): the return each local authority sends NHS England "
            "every quarter, one row per request, assessment, service or review, linked to health records by "
            f"the pseudonymised NHS number. The '{SOCIAL_CARE}' column is worked out from it for the listed "
            "people only.",
        ),
        (
            "How current",
            f"A quarter's return is due {SOCIAL_CARE_RETURN_DUE_DAYS} days after the quarter ends: at the data "
            f"date ({data_date.strftime('%d %B %Y')}) the latest quarter due is {quarter_label(latest_due)}. "
            "Care that began after the end of an authority's latest quarter received is not yet known to "
            "the list. The risk model reads social care as at the end of the latest quarter due; a person "
            "whose authority's return for it is missing is 'not known' to the model and on their row (each "
            "return covers the 12 months to its quarter's end, so an older missing quarter is covered).",
        ),
    ]
    for code in returns.latest:
        latest = returns.latest[code]
        missing = [quarter_label(q) for q in missing_quarters(returns, code)]
        shown = ", ".join(missing[-MISSING_QUARTERS_SHOWN:])
        earlier = len(missing) - MISSING_QUARTERS_SHOWN
        if earlier > 0:
            shown += f" and {earlier} earlier quarter{'s' if earlier > 1 else ''}"
        if latest is None:
            text = f"No return received{': ' + shown if missing else ''}."
        else:
            text = f"Latest quarter received: {quarter_label(latest)}. "
            text += f"Not received: {shown}." if missing else "Every quarter due has been received."
        notes.append((local_authority_name(code), text))
    return notes


DECISION_NOTE = (
    "Where the MDT records what it decided, from the drop-down: "
    + "; ".join(DECISIONS.values())
    + ". Blank = nothing recorded yet. Only the coded decision comes back to riskstrat, never "
    "free text: keep notes in the person's record. Printed, it is a blank box to write in."
)
"""What the decision column means (the About sheet)."""


BY_DECISION: frozenset[str] = frozenset(left_by_decision(code) for code in DECISIONS)
"""The 'Why they left' reasons that name an MDT decision."""


def leaver_notes(mdt: Mdt, *, lottery: bool = False) -> list[tuple[str, str]]:
    """What the 'Left the list' sheet holds and what each reason means, for the About sheet.

    Args:
        mdt: The MDT; when it leaves type 1 opt-outs off, the notes say that people who
            opt out are never shown on the sheet.
        lottery: Whether the list's last places were drawn this week (only then do the
            notes say that people not drawn are never shown on the sheet).

    Returns:
        (topic, explanation) pairs.
    """
    notes = [
        (
            "Who",
            "People on this MDT's last published list who are not on this week's. 'Risk this week' is "
            "blank when the person was not scored this week (for example, they died or left).",
        ),
        # Caseload patients leave the list only where the MDT leaves them off; the decisions
        # share one note.
        *(
            (reason, text)
            for reason, text in LEAVER_REASONS.items()
            if reason not in BY_DECISION
            and (reason != LEFT_CASELOAD or mdt.exclusions.active_caseload == "exclude")
        ),
    ]
    if any(reason in BY_DECISION for reason in LEAVER_REASONS):
        notes.append(
            (
                "MDT decision: ...",
                "The MDT recorded this decision (named after the colon) about the person on an earlier "
                "list, and by this MDT's decision rules it keeps them off the list for some weeks.",
            )
        )
    if mdt.exclusions.type1_opt_out == "exclude":
        notes.append(
            (
                "Type 1 opt-out",
                "Never shown here: a person who opts out is removed without a trace, also from this "
                "sheet, even if last week's list held them.",
            )
        )
    if lottery:
        notes.append(
            (
                "Not drawn",
                "Never shown here: the last places on this week's list were filled by a draw, and people "
                "who were not drawn are not on this sheet, even if last week's list held them. They can "
                "be listed again next week.",
            )
        )
    return notes


def leavers_summary(output: MdtOutput, leavers: pd.DataFrame, info: RunInfo) -> str:
    """The line under the 'Left the list' title: the week, the list compared with and how many left."""
    if output.previous_week is None:
        return f"Week {info.week.isoformat()} · No earlier list for this MDT: this is its first week."
    return (
        f"Week {info.week.isoformat()} · compared with the list for the week of "
        f"{output.previous_week.isoformat()} · {_people(len(leavers))}"
    )


def sheet_columns(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The Worklist sheet's table: the printed columns first (:data:`PRINT_WIDTHS` order), then the rest.

    The MDT's decision column is added, blank, as the last printed column.

    Args:
        rows: The list rows (with the NHS number column if configured).

    Returns:
        The table and how many of its first columns print.
    """
    table = rows.copy()
    table[DECISION_HEADER] = None
    printed = [c for c in PRINT_WIDTHS if c in table.columns]
    return table[printed + [c for c in table.columns if c not in PRINT_WIDTHS]], len(printed)


def _decision_drop_down(sheet, column: int, first_row: int, last_row: int) -> None:
    """The decision cells: a drop-down of the coded decisions' wordings, refusing other values, unlocked."""
    choices = list(DECISIONS.values())
    if any("," in choice or '"' in choice for choice in choices):
        raise RiskstratError("a decision's wording holds a comma or a quote, which a drop-down list cannot")
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(choices) + '"',
        allow_blank=True,
        showDropDown=False,  # (sic) False shows the in-cell arrow
        showErrorMessage=True,
        errorStyle="stop",
        errorTitle="Not a coded decision",
        error="Choose one of the decisions in the list (or leave the cell blank).",
        showInputMessage=True,
        promptTitle=DECISION_HEADER,
        prompt="Choose what the MDT decided.",
    )
    sheet.add_data_validation(validation)
    letter = get_column_letter(column)
    if last_row >= first_row:
        validation.add(f"{letter}{first_row}:{letter}{last_row}")
    for row in range(first_row, last_row + 1):
        sheet.cell(row=row, column=column).protection = Protection(locked=False)


def _write_list_sheet(sheet, output: MdtOutput, rows: pd.DataFrame, info: RunInfo) -> None:
    """The Worklist sheet: title rows, the table with its decision column, printing set up."""
    table, printed = sheet_columns(rows)
    capacity = output.counts.get("capacity", len(rows))
    titles = [
        (list_title(output.mdt, info), _font(bold=True, size=14)),
        (
            f"Ranked by risk of {info.outcome_wordings[output.mdt.outcome]} · "
            f"{_people(len(rows))} (this MDT's weekly capacity {capacity})",
            _font(),
        ),
        (model_line(info, output.mdt.outcome), _font()),
        (
            f"{CLINICAL_JUDGEMENT} Records up to {info.data_date.strftime('%d %B %Y')} only: check the "
            f"person's record before contacting them. Read the '{ABOUT_SHEET}' sheet before use.",
            _font(bold=True, italic=True),
        ),
    ]
    for row, (text, font) in enumerate(titles, start=1):
        cell = put(sheet.cell(row=row, column=1), text)
        cell.font = font
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=max(printed, 1))
    # Rank, Person ID (and NHS number) stay in view when scrolling right.
    _write_table(sheet, table, HEADER_ROW, frozen_columns=identity_columns(table), widths=PRINT_WIDTHS)
    decision = list(table.columns).index(DECISION_HEADER) + 1
    _decision_drop_down(sheet, decision, HEADER_ROW + 1, HEADER_ROW + len(table))
    _set_up_printing(sheet, HEADER_ROW, output.mdt, info, print_columns=printed)


def write_xlsx(
    output: MdtOutput, rows: pd.DataFrame, leavers: pd.DataFrame, info: RunInfo, path: Path
) -> None:
    """Write one MDT's workbook: the list, what each column means, and who left the list.

    Every sheet prints A4 landscape, one page wide, with its table's headings on each page,
    the protective marking, MDT and week in the header and the data date, the caveat and the
    page number in the footer. The list prints its first columns (:data:`PRINT_WIDTHS`) and
    carries the MDT's decision column; the issued list is stamped for the decisions' return.

    Args:
        output: The MDT's output (for its MDT and counts).
        rows: The list rows (with the NHS number column if configured).
        leavers: The 'Left the list' rows (with the NHS number column if configured).
        info: Week, data date, model versions, risk bands.
        path: The file to write.
    """
    book = new_workbook()
    sheet = book.active
    sheet.title = LIST_SHEET
    _write_list_sheet(sheet, output, rows, info)

    about = book.create_sheet(ABOUT_SHEET)
    _set_up_printing(about, _write_about(about, output, rows, info), output.mdt, info)

    left = book.create_sheet(LEFT_SHEET)
    title = f"{output.mdt.name}: people on last week's list who are not on this week's"
    put(left["A1"], title).font = _font(bold=True, size=14)
    put(left["A2"], leavers_summary(output, leavers, info))
    _write_table(left, leavers, 4)
    _set_up_printing(left, 4, output.mdt, info)

    name_fonts(book)
    for each in (sheet, about, left):
        fit_row_heights(each)
    stamp = datetime(info.week.year, info.week.month, info.week.day)
    book.properties.creator = "riskstrat"
    book.properties.created = stamp
    decisions.stamp_workbook(book, mdt=output.mdt.name, week=info.week, rows=rows)
    seal_workbook(book)
    book.save(path)
    _normalise_xlsx(path, stamp)


def _normalise_xlsx(path: Path, stamp: datetime) -> None:
    """Rewrite the workbook's zip with fixed times so the same list gives the same bytes."""
    with zipfile.ZipFile(path) as source:
        entries = [(info.filename, source.read(info.filename)) for info in source.infolist()]
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path, "w") as target:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + iso.encode(), data)
            entry = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)


def manifest(outputs: list[MdtOutput], info: RunInfo, files: dict[str, str]) -> dict:
    """The manifest: counts per MDT, file hashes, model versions, extract and settings hashes.

    It holds no person-level rows.
    """
    return {
        "week": info.week.isoformat(),
        "data_date": info.data_date.isoformat(),
        "model_versions": dict(sorted(info.model_versions.items())),
        "extract_snapshot_hash": info.extract_snapshot_hash,
        "settings_hash": info.settings_hash,
        "mdts": {
            output.mdt.name: {
                "slug": output.mdt.slug,
                "outcome": output.mdt.outcome,
                "practices": list(output.mdt.practices),
                "listed": len(output.rows),
                "left_the_list": len(output.leavers),
                **{k: int(v) for k, v in sorted(output.counts.items())},
                **({"lottery_seed": output.lottery_seed} if output.lottery_seed else {}),
            }
            for output in outputs
        },
        "files": dict(sorted(files.items())),
    }


def write_worklists(
    output_dir: Path,
    outputs: list[MdtOutput],
    info: RunInfo,
    nhs_numbers: pd.Series | None = None,
    history: pd.DataFrame | None = None,
    assignment: pd.DataFrame | None = None,
) -> Path:
    """Write every MDT's XLSX and CSV, the week's history and the manifest under ``<output_dir>/worklists/<week>/``.

    The week is one transaction: everything is written into a staging folder
    and published in one atomic step, so the week appears with its history or
    not at all (:mod:`riskstrat.worklists.history`).

    Args:
        output_dir: The outputs folder.
        outputs: One per MDT.
        info: Week, data date, model versions and hashes.
        nhs_numbers: person_id -> NHS number from the re-identification key, or None.
        history: The week's history rows (:func:`~riskstrat.worklists.history.history_records`),
            written as ``history.parquet`` and listed in the manifest; pseudonymised IDs only.
        assignment: The week's cut-off record (:func:`~riskstrat.worklists.assignment.assignment_records`),
            written as ``assignment.parquet`` and listed in the manifest; recorded, never shown.

    Returns:
        The week's folder.
    """
    from riskstrat.worklists.assignment import record_assignment
    from riskstrat.worklists.history import record_week

    target = output_catalog(output_dir).week(info.week)
    with atomic_directory(target) as staging:
        files: dict[str, str] = {}
        for output in outputs:
            rows = with_nhs_number(output.rows, nhs_numbers, "Person ID")
            leavers = with_nhs_number(leavers_table(output.leavers), nhs_numbers, "Person ID")
            csv_path = staging / f"{output.mdt.slug}.csv"
            xlsx_path = staging / f"{output.mdt.slug}.xlsx"
            write_csv(rows, csv_path, csv_preamble(output.mdt, info))
            write_xlsx(output, rows, leavers, info, xlsx_path)
            for path in (xlsx_path, csv_path):
                files[path.name] = file_sha256(path)
        if history is not None:
            recorded = record_week(staging, history)
            files[recorded.name] = file_sha256(recorded)
        if assignment is not None:
            recorded = record_assignment(staging, assignment)
            files[recorded.name] = file_sha256(recorded)
        content = json.dumps(manifest(outputs, info, files), indent=2, sort_keys=False) + "\n"
        (staging / MANIFEST).write_text(content, encoding="utf-8")
    return target
