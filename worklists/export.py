"""Writing the weekly lists: per MDT an XLSX and a CSV, plus ``manifest.json``, all or nothing.

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
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from riskstrat.catalog import output_catalog
from riskstrat.errors import RiskstratError
from riskstrat.features.outcomes import outcome_names, outcome_wording
from riskstrat.features.settings import OutcomeSettings
from riskstrat.io import atomic_directory, file_sha256
from riskstrat.worklists.cells import header_footer_text, inert_frame, put, seal_workbook
from riskstrat.worklists.history import LEAVER_REASONS
from riskstrat.worklists.rows import column_note
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
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_WIDTH_LIMITS = (8, 60)


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


@dataclass
class MdtOutput:
    """One MDT's rows, leavers and aggregate counts, ready to write.

    Attributes:
        previous_week: Week of the MDT's last published list the leavers are measured
            against; None when there is none (the MDT's first week).
    """

    mdt: Mdt
    rows: pd.DataFrame
    leavers: pd.DataFrame
    counts: Mapping[str, int] = field(default_factory=dict)
    previous_week: date | None = None


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


def write_csv(rows: pd.DataFrame, path: Path) -> None:
    """Write the rows as UTF-8 CSV, LF line ends, ISO dates, risk to 1 dp: same input, same bytes.

    Every text value and heading is made inert first (:mod:`riskstrat.worklists.cells`).
    """
    out = rows.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, date)).any():
            out[column] = [v.isoformat() if isinstance(v, date) else "" for v in out[column]]
    inert_frame(out).to_csv(path, index=False, lineterminator="\n", encoding="utf-8", float_format="%.1f")


def _model_line(info: RunInfo) -> str:
    versions = "; ".join(f"{outcome}: {version}" for outcome, version in sorted(info.model_versions.items()))
    return versions or "not recorded"


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


def _write_table(sheet, frame: pd.DataFrame, header_row: int, frozen_columns: int = 0) -> None:
    bold = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor="005EB8")  # NHS blue
    for col, heading in enumerate(frame.columns, start=1):
        cell = put(sheet.cell(row=header_row, column=col), str(heading))
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for r, record in enumerate(frame.itertuples(index=False), start=header_row + 1):
        for col, value in enumerate(record, start=1):
            heading = frame.columns[col - 1]
            cell = put(sheet.cell(row=r, column=col), value)
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


def identity_columns(frame: pd.DataFrame) -> int:
    """How many leading columns say who a row is: up to Person ID, or NHS number when present."""
    names = list(frame.columns)
    return max((names.index(c) + 1 for c in ("Person ID", "NHS number") if c in names), default=0)


def _set_up_printing(sheet, header_row: int, mdt: Mdt, info: RunInfo, title_columns: int = 0) -> None:
    """A4 landscape, the table's header row on every page and a marked header and footer.

    A sheet with ``title_columns`` (the list) prints at full size over as many pages across
    as it needs, with those columns (Rank, Person ID) on every page: fitted to one page wide,
    its twenty-odd columns would print at about a quarter of their size. Other sheets are
    fitted to one page wide.
    """
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    if title_columns:
        sheet.print_title_cols = f"A:{get_column_letter(title_columns)}"
    else:
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0  # as many pages down as the sheet needs
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{header_row}:{header_row}"
    page_numbers = "Page &P of &N"
    # Each data text is cut so that its whole header or footer stays within Excel's 255 characters.
    sheet.oddHeader.left.text = header_footer_text(list_title(mdt, info), beside=(PROTECTIVE_MARKING,))
    sheet.oddHeader.center.text = PROTECTIVE_MARKING
    sheet.oddFooter.left.text = header_footer_text(
        f"{mdt.name} · week of {info.week.isoformat()}", beside=(PROTECTIVE_MARKING, page_numbers)
    )
    sheet.oddFooter.center.text = PROTECTIVE_MARKING
    sheet.oddFooter.right.text = page_numbers


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
    put(sheet.cell(row=row, column=1), title).font = Font(bold=True)
    for r, (topic, text) in enumerate(pairs, start=row + 1):
        put(sheet.cell(row=r, column=1), topic).alignment = Alignment(vertical="top")
        put(sheet.cell(row=r, column=2), text).alignment = Alignment(wrap_text=True, vertical="top")
    return row + len(pairs) + 1


def _write_about(about, output: MdtOutput, rows: pd.DataFrame, info: RunInfo) -> int:
    """Fill the 'About this list' sheet; returns the row of the column table's headings."""
    about.column_dimensions["A"].width = 30
    about.column_dimensions["B"].width = 100
    put(about["A1"], "About this list").font = Font(bold=True, size=14)
    put(about["A2"], "Intended use").font = Font(bold=True)
    put(about["A3"], INTENDED_USE).alignment = Alignment(wrap_text=True, vertical="top")
    about.merge_cells("A3:B3")
    about.row_dimensions[3].height = 90
    put(about["A4"], CLINICAL_JUDGEMENT).font = Font(bold=True)
    put(about["A5"], data_date_caution(info.data_date)).font = Font(bold=True)
    about["A5"].alignment = Alignment(wrap_text=True, vertical="top")
    about.merge_cells("A5:B5")
    about.row_dimensions[5].height = 32
    row = _write_section(about, 7, "How this list was made", how_list_was_made(output, info.outcome_wordings))
    bands = [("Basis", risk_band_basis(info.risk_bands)), *risk_band_definitions(info.risk_bands)]
    row = _write_section(about, row + 1, "Risk bands", bands)
    header = _write_section(about, row + 1, f"Why people are on '{LEFT_SHEET}'", leaver_notes(output.mdt)) + 1
    put(about.cell(row=header, column=1), "Column").font = Font(bold=True)
    put(about.cell(row=header, column=2), "What it means").font = Font(bold=True)
    for r, column in enumerate(rows.columns, start=header + 1):
        put(about.cell(row=r, column=1), str(column))
        put(about.cell(row=r, column=2), column_note(str(column))).alignment = Alignment(wrap_text=True)
    return header


def leaver_notes(mdt: Mdt) -> list[tuple[str, str]]:
    """What the 'Left the list' sheet holds and what each reason means, for the About sheet.

    Args:
        mdt: The MDT; when it leaves type 1 opt-outs off, the notes say that people who
            opt out are never shown on the sheet.

    Returns:
        (topic, explanation) pairs.
    """
    notes = [
        (
            "Who",
            "People on this MDT's last published list who are not on this week's. 'Risk this week' is "
            "blank when the person was not scored this week (for example, they died or left).",
        ),
        *LEAVER_REASONS.items(),
    ]
    if mdt.exclusions.type1_opt_out == "exclude":
        notes.append(
            (
                "Type 1 opt-out",
                "Never shown here: a person who opts out is removed without a trace, also from this "
                "sheet, even if last week's list held them.",
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


def write_xlsx(
    output: MdtOutput, rows: pd.DataFrame, leavers: pd.DataFrame, info: RunInfo, path: Path
) -> None:
    """Write one MDT's workbook: the list, what each column means, and who left the list.

    Every sheet prints A4 landscape with its table's headings on each page and the MDT,
    week and protective marking in the header and footer; the list at full size with Rank
    and Person ID on every page, the other sheets one page wide.

    Args:
        output: The MDT's output (for its MDT and counts).
        rows: The list rows (with the NHS number column if configured).
        leavers: The 'Left the list' rows (with the NHS number column if configured).
        info: Week, data date, model versions, risk bands.
        path: The file to write.
    """
    book = Workbook()
    sheet = book.active
    sheet.title = LIST_SHEET
    put(sheet["A1"], list_title(output.mdt, info)).font = Font(bold=True, size=14)
    put(
        sheet["A2"],
        f"Week {info.week.isoformat()} · data to {info.data_date.isoformat()} · "
        f"ranked by risk of {info.outcome_wordings[output.mdt.outcome]} · "
        f"{len(rows)} people (capacity {output.counts.get('capacity', len(rows))})",
    )
    put(sheet["A3"], f"Models: {_model_line(info)} · extract {info.extract_snapshot_hash}")
    put(
        sheet["A4"],
        f"{CLINICAL_JUDGEMENT} Records up to {info.data_date.strftime('%d %B %Y')} only: check the "
        f"person's record before contacting them. Read the '{ABOUT_SHEET}' sheet before use.",
    ).font = Font(italic=True)
    # Rank, Person ID (and NHS number) stay in view when scrolling right.
    identity = identity_columns(rows)
    _write_table(sheet, rows, HEADER_ROW, frozen_columns=identity)
    _set_up_printing(sheet, HEADER_ROW, output.mdt, info, title_columns=identity)

    about = book.create_sheet(ABOUT_SHEET)
    _set_up_printing(about, _write_about(about, output, rows, info), output.mdt, info)

    left = book.create_sheet(LEFT_SHEET)
    title = f"{output.mdt.name}: people on last week's list who are not on this week's"
    put(left["A1"], title).font = Font(bold=True, size=14)
    put(left["A2"], leavers_summary(output, leavers, info))
    _write_table(left, leavers, 4)
    _set_up_printing(left, 4, output.mdt, info)

    stamp = datetime(info.week.year, info.week.month, info.week.day)
    book.properties.creator = "riskstrat"
    book.properties.created = stamp
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

    Returns:
        The week's folder.
    """
    from riskstrat.worklists.history import record_week

    target = output_catalog(output_dir).week(info.week)
    with atomic_directory(target) as staging:
        files: dict[str, str] = {}
        for output in outputs:
            rows = with_nhs_number(output.rows, nhs_numbers, "Person ID")
            leavers = with_nhs_number(leavers_table(output.leavers), nhs_numbers, "Person ID")
            csv_path = staging / f"{output.mdt.slug}.csv"
            xlsx_path = staging / f"{output.mdt.slug}.xlsx"
            write_csv(rows, csv_path)
            write_xlsx(output, rows, leavers, info, xlsx_path)
            for path in (xlsx_path, csv_path):
                files[path.name] = file_sha256(path)
        if history is not None:
            recorded = record_week(staging, history)
            files[recorded.name] = file_sha256(recorded)
        content = json.dumps(manifest(outputs, info, files), indent=2, sort_keys=False) + "\n"
        (staging / MANIFEST).write_text(content, encoding="utf-8")
    return target
