"""Writing the weekly lists: per MDT an XLSX and a CSV, plus ``manifest.json``, all or nothing.

Everything goes under ``<output_dir>/worklists/<week>/`` through
:func:`riskstrat.io.atomic_directory`, so a failed run leaves the previous
outputs as they were. Files are deterministic: the same input gives the same
CSV bytes (and the XLSX is written with fixed timestamps, so its bytes and the
manifest repeat too). IDs stay pseudonymised; when a re-identification key is
configured the NHS number is added to the XLSX and CSV only, never to the
manifest, the history or logs.
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

from riskstrat.errors import RiskstratError
from riskstrat.io import atomic_directory, file_sha256
from riskstrat.worklists.rows import column_note
from riskstrat.worklists.settings import Mdt

LIST_SHEET = "Worklist"
ABOUT_SHEET = "About this list"
LEFT_SHEET = "Left the list"
HEADER_ROW = 5
"""Row of the column headings on the list sheet (title rows above it)."""
MANIFEST = "manifest.json"
OUTCOME_NAMES = {
    "emergency_admission": "an emergency hospital admission (or death) in the next 12 months",
    "frequent_attendance": "frequent A&E attendance (5 or more) in the next 12 months",
}
INTENDED_USE = (
    "For the MDT's weekly review of whom to discuss for a holistic assessment, care plan or "
    "virtual-ward bed. It ranks people registered with this MDT's practices by predicted risk "
    "and gives the three factors that raise each person's risk most. It supports clinical "
    "judgement and does not replace it: the model sees only coded records, can be wrong, and "
    "knows nothing of the person's wishes or what is already in place. People not on the list "
    "may still need care. Equal risks are ordered by a fixed hash of the pseudonymised ID, "
    "not by any personal characteristic."
)
CLINICAL_JUDGEMENT = "This list supports clinical judgement and does not replace it."
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


@dataclass
class MdtOutput:
    """One MDT's rows, leavers and aggregate counts, ready to write."""

    mdt: Mdt
    rows: pd.DataFrame
    leavers: pd.DataFrame
    counts: Mapping[str, int] = field(default_factory=dict)


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
    """The 'Left the list' rows with their headings."""
    return pd.DataFrame(
        {
            "Person ID": leavers["person_id"].astype(str).to_numpy(),
            "Rank last week": leavers["previous_rank"].astype("int64").to_numpy(),
            "Risk last week (%)": (leavers["previous_probability"].astype(float) * 100).round(1).to_numpy(),
            "Why they left": leavers["reason"].astype(str).to_numpy(),
        }
    )


def write_csv(rows: pd.DataFrame, path: Path) -> None:
    """Write the rows as UTF-8 CSV, LF line ends, ISO dates, risk to 1 dp: same input, same bytes."""
    out = rows.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, date)).any():
            out[column] = [v.isoformat() if isinstance(v, date) else "" for v in out[column]]
    out.to_csv(path, index=False, lineterminator="\n", encoding="utf-8", float_format="%.1f")


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


def _write_table(sheet, frame: pd.DataFrame, header_row: int) -> None:
    bold = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor="005EB8")  # NHS blue
    for col, heading in enumerate(frame.columns, start=1):
        cell = sheet.cell(row=header_row, column=col, value=str(heading))
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for r, record in enumerate(frame.itertuples(index=False), start=header_row + 1):
        for col, value in enumerate(record, start=1):
            heading = frame.columns[col - 1]
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                value = None
            elif hasattr(value, "item"):
                value = value.item()
            cell = sheet.cell(row=r, column=col, value=value)
            if isinstance(value, date):
                cell.number_format = "DD/MM/YYYY"
            elif "(%)" in heading:
                cell.number_format = "0.0"
            elif isinstance(value, int):
                cell.number_format = "0"
    last_row = header_row + max(len(frame), 1)
    sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(max(len(frame.columns), 1))}{last_row}"
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    _fit_widths(sheet, frame, header_row)


def list_title(mdt: Mdt, info: RunInfo) -> str:
    """Title of an MDT's list: the MDT and the week."""
    return f"{mdt.name}: worklist for the week of {info.week.strftime('%d %B %Y')}"


def write_xlsx(
    output: MdtOutput, rows: pd.DataFrame, leavers: pd.DataFrame, info: RunInfo, path: Path
) -> None:
    """Write one MDT's workbook: the list, what each column means, and who left the list.

    Args:
        output: The MDT's output (for its MDT and counts).
        rows: The list rows (with the NHS number column if configured).
        leavers: The 'Left the list' rows (with the NHS number column if configured).
        info: Week, data date, model versions.
        path: The file to write.
    """
    book = Workbook()
    sheet = book.active
    sheet.title = LIST_SHEET
    sheet["A1"] = list_title(output.mdt, info)
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A2"] = (
        f"Week {info.week.isoformat()} · data to {info.data_date.isoformat()} · "
        f"ranked by risk of {OUTCOME_NAMES.get(output.mdt.outcome, output.mdt.outcome)} · "
        f"{len(rows)} people (capacity {output.counts.get('capacity', len(rows))})"
    )
    sheet["A3"] = f"Models: {_model_line(info)} · extract {info.extract_snapshot_hash}"
    sheet["A4"] = f"{CLINICAL_JUDGEMENT} Read the '{ABOUT_SHEET}' sheet before use."
    sheet["A4"].font = Font(italic=True)
    _write_table(sheet, rows, HEADER_ROW)

    about = book.create_sheet(ABOUT_SHEET)
    about["A1"] = "About this list"
    about["A1"].font = Font(bold=True, size=14)
    about["A2"] = "Intended use"
    about["A2"].font = Font(bold=True)
    about["A3"] = INTENDED_USE
    about["A4"] = CLINICAL_JUDGEMENT
    about["A4"].font = Font(bold=True)
    about["A6"] = "Column"
    about["B6"] = "What it means"
    about["A6"].font = about["B6"].font = Font(bold=True)
    for r, column in enumerate(rows.columns, start=7):
        about.cell(row=r, column=1, value=str(column))
        about.cell(row=r, column=2, value=column_note(str(column))).alignment = Alignment(wrap_text=True)
    about.column_dimensions["A"].width = 30
    about.column_dimensions["B"].width = 100
    about["A3"].alignment = Alignment(wrap_text=True, vertical="top")
    about.merge_cells("A3:B3")
    about.row_dimensions[3].height = 90

    left = book.create_sheet(LEFT_SHEET)
    left["A1"] = f"{output.mdt.name}: people on last week's list who are not on this week's"
    left["A1"].font = Font(bold=True, size=14)
    left["A2"] = f"Week {info.week.isoformat()} · {len(leavers)} people"
    _write_table(left, leavers, 4)

    stamp = datetime(info.week.year, info.week.month, info.week.day)
    book.properties.creator = "riskstrat"
    book.properties.created = stamp
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
) -> Path:
    """Write every MDT's XLSX and CSV and the manifest under ``<output_dir>/worklists/<week>/``, atomically.

    Args:
        output_dir: The outputs folder.
        outputs: One per MDT.
        info: Week, data date, model versions and hashes.
        nhs_numbers: person_id -> NHS number from the re-identification key, or None.

    Returns:
        The week's folder.
    """
    target = Path(output_dir) / "worklists" / info.week.isoformat()
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
        content = json.dumps(manifest(outputs, info, files), indent=2, sort_keys=False) + "\n"
        (staging / MANIFEST).write_text(content, encoding="utf-8")
    return target
