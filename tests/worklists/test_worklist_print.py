"""The list as an MDT opens and prints it: A4 landscape, one person per row, readable, marked.

The print setup is read back from the XLSX; where LibreOffice is installed, a 50-person
list is rendered to PDF and its pages read back with pdftotext.
"""

import re
import shutil
import subprocess
import zipfile
from datetime import date

import numpy as np
import openpyxl
import pandas as pd
import pytest

from riskstrat.worklists.decisions import DECISION_HEADER, DECISIONS
from riskstrat.worklists.export import (
    ABOUT_SHEET,
    FONT_NAME,
    HEADER_ROW,
    HEADER_SECTION_CHARACTERS,
    LIST_SHEET,
    PRINT_WIDTHS,
    MdtOutput,
    RunInfo,
    csv_preamble,
    leaver_notes,
    read_list_csv,
    text_lines,
    write_csv,
    write_xlsx,
)
from riskstrat.worklists.history import LEFT_CASELOAD
from riskstrat.worklists.rows import LAST_DECISION, SOCIAL_CARE, reason_columns, worklist_rows_schema
from riskstrat.worklists.settings import ExclusionSettings, Mdt, RiskBandSettings

WEEK, DATA_DATE = date(2026, 1, 5), date(2025, 12, 28)
REASONS = [
    "Severe frailty (eFI 0.389)",
    "11 A&E attendances in the last 12 months",
    "Aged 87",
    "Hospital Frailty Risk Score 24.7 (high risk) from hospital diagnoses in the last 2 years",
    "A&E attendance in the last week",
    "Has heart failure",
]
SOCIAL_CARE_TEXTS = [
    "Not known: Wolverhampton's return for Jul-Sep 2025 not received; long-term residential care since "
    "May 2019",
    "",
    "Long-term home care since Apr 2022",
    "Not known: Walsall's return for Apr-Jun 2025 not received",
    "",
    "Long-term home care since Mar 2025, direct payment since Jun 2024; reablement ended 12 Nov; is an "
    "unpaid carer",
]
"""Social care texts as the demo's lists hold them, the longest included (half the demo's people live
where a quarter's return is missing)."""
CONDITIONS = [
    "Atrial fibrillation, Dementia, Depression, Osteoarthritis +2 more",
    "Hypertension, Chronic kidney disease",
    "Rheumatoid arthritis",
]


def fifty_rows(n: int = 50) -> pd.DataFrame:
    """A list shaped like the demo's (the longest texts it holds), one row per person."""
    rng = np.random.default_rng(5)
    rows = pd.DataFrame(
        {
            "Rank": np.arange(1, n + 1),
            "Person ID": [f"P{100000000 + 7919 * i}" for i in range(n)],
            "Practice": rng.choice(["M98380", "M93099", "M87965"], n),
            "Risk (%)": np.round(np.linspace(91.5, 70.2, n), 1),
            "Risk band": np.where(
                np.arange(n) < 15, "Very high", np.where(np.arange(n) < 35, "High", "Moderate")
            ),
            **{
                heading: [REASONS[(i + k) % len(REASONS)] for i in range(n)]
                for k, heading in enumerate(reason_columns(3))
            },
            "Age band": rng.choice(["65-74", "75-84", "85+"], n),
            "Sex": rng.choice(["Female", "Male"], n),
            "Frailty": "Severe (eFI 0.389); practice score 0.44",
            "Long-term conditions": rng.integers(1, 7, n),
            "Main long-term conditions": [CONDITIONS[i % 3] for i in range(n)],
            "Care home": "No",
            "Last emergency admission": [date(2025, 12, 7) if i % 2 else None for i in range(n)],
            "Last A&E attendance": date(2025, 11, 13),
            "A&E attendances (12 months)": rng.integers(0, 12, n),
            "GP appointments (12 months)": rng.integers(5, 40, n),
            "Community services (90 days)": "District nursing (4), Falls service (1), Virtual ward (6)",
            SOCIAL_CARE: [SOCIAL_CARE_TEXTS[i % len(SOCIAL_CARE_TEXTS)] for i in range(n)],
            "On caseload": ["Dudley virtual ward" if i % 9 == 0 else "" for i in range(n)],
            "Change since last week": rng.choice(["new", "up", "down", "same"], n),
            "Weeks on list": rng.integers(1, 5, n),
            LAST_DECISION: ["Not appropriate now (29/12/2025)" if i % 7 == 0 else "" for i in range(n)],
        }
    )
    return worklist_rows_schema(3).check(rows)  # the rows as build_rows makes them


MDT = Mdt(
    name="Dudley Neighbourhood 1",
    practices=("M98380", "M93099", "M87965"),
    outcome="emergency_admission",
    min_age=18,
    capacity_people=50,
    capacity_share=None,
    exclusions=ExclusionSettings(active_caseload="flag", type1_opt_out="exclude"),
)
INFO = RunInfo(
    week=WEEK,
    data_date=DATA_DATE,
    model_versions={"emergency_admission": "emergency_admission v2"},
    extract_snapshot_hash="8669215782e78df2",
    settings_hash="s",
    risk_bands=RiskBandSettings(
        basis="probability", bands=({"name": "Very high", "min": 0.8}, {"name": "High", "min": 0.75})
    ),
    models_trained={"emergency_admission": date(2025, 12, 14)},
)


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> tuple:
    rows = fifty_rows()
    leavers = pd.DataFrame(columns=["Person ID", "Practice", "Why they left"])
    path = tmp_path_factory.mktemp("print") / "dudley-neighbourhood-1.xlsx"
    output = MdtOutput(MDT, rows, leavers, {"capacity": 50, "registered": 24444, "eligible": 24444})
    write_xlsx(output, rows, leavers, INFO, path)
    return path, rows


def test_the_list_prints_a4_landscape_one_page_wide_with_its_headings_on_every_page(workbook):
    path, rows = workbook
    sheet = openpyxl.load_workbook(path)[LIST_SHEET]
    assert sheet.page_setup.orientation == "landscape"
    assert int(sheet.page_setup.paperSize) == int(sheet.PAPERSIZE_A4)
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
    assert sheet.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"
    headings = [c.value for c in sheet[HEADER_ROW]]
    printed = [h for h in PRINT_WIDTHS if h in headings]
    # The printed columns come first, the decision last of them; the print area stops there.
    assert headings[: len(printed)] == printed and printed[-1] == DECISION_HEADER
    last = openpyxl.utils.get_column_letter(len(printed))
    assert sheet.print_area == f"'{LIST_SHEET}'!$A$1:${last}${HEADER_ROW + len(rows)}"
    assert {"Sex", "Weeks on list", "GP appointments (12 months)"} <= set(headings[len(printed) :])
    for column, heading in enumerate(printed, start=1):
        assert (
            sheet.column_dimensions[openpyxl.utils.get_column_letter(column)].width == PRINT_WIDTHS[heading]
        )
    # Narrow enough to print at 8 points or more: LibreOffice prints these 192 units (with the
    # social care column) at 80% to 83% on A4 landscape, as the rows' heights vary (measured in the
    # render test below).
    assert sum(PRINT_WIDTHS[h] for h in printed) <= 192


def test_every_row_has_a_height_that_holds_its_wrapped_text(workbook):
    path, rows = workbook
    sheet = openpyxl.load_workbook(path)[LIST_SHEET]
    for row in range(1, HEADER_ROW + len(rows) + 1):
        assert sheet.row_dimensions[row].height, row
    widths = {c.column: sheet.column_dimensions[c.column_letter].width for c in sheet[HEADER_ROW]}
    for row in sheet.iter_rows(min_row=HEADER_ROW, max_row=HEADER_ROW + len(rows)):
        needed = max(
            text_lines(str(c.value), widths[c.column], bold=bool(c.font.bold))
            for c in row
            if isinstance(c.value, str) and c.alignment.wrap_text
        )
        assert sheet.row_dimensions[row[0].row].height >= needed * 10 * 1.15, row[0].row
    # Heading labels wrap within their width instead of being cut off.
    assert all(c.alignment.wrap_text for c in sheet[HEADER_ROW])


def test_text_lines_wraps_at_spaces_with_the_fonts_widths():
    assert text_lines("Aged 87", 17) == 1
    assert text_lines("11 A&E attendances in the last 12 months", 17) == 3
    assert text_lines("first\nsecond", 40) == 2
    assert text_lines("W" * 60, 10) >= 6  # a long word is broken


def test_every_cell_and_the_default_style_name_their_font(workbook):
    path, _ = workbook
    book = openpyxl.load_workbook(path)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.value is not None:
                    assert cell.font.name == FONT_NAME, (sheet.title, cell.coordinate)
    with zipfile.ZipFile(path) as archive:
        styles = archive.read("xl/styles.xml").decode()
    names = re.findall(r'<name val="([^"]+)"', styles)
    assert names and set(names) == {FONT_NAME}  # headings too: nothing falls back to a serif face


def test_header_and_footer_sections_are_short_and_the_marking_stands_alone(workbook):
    path, _ = workbook
    book = openpyxl.load_workbook(path)
    for name in (LIST_SHEET, ABOUT_SHEET):
        sheet = book[name]
        parts = [sheet.oddHeader.left, sheet.oddHeader.center, sheet.oddHeader.right]
        parts += [sheet.oddFooter.left, sheet.oddFooter.center, sheet.oddFooter.right]
        assert all(len(p.text) <= HEADER_SECTION_CHARACTERS for p in parts)
        assert all(p.font == f"{FONT_NAME},Regular" and p.size == 8 for p in parts)
        assert sheet.oddHeader.center.text == "OFFICIAL-SENSITIVE: personal data"
        assert sheet.oddFooter.center.text == "Check the person's record before contacting them"
        assert sheet.oddFooter.left.text == "Records up to 28 December 2025"


def test_the_title_rows_say_what_the_list_is_in_plain_words(workbook):
    path, _ = workbook
    sheet = openpyxl.load_workbook(path)[LIST_SHEET]
    assert sheet["A3"].value == "Model version 2, trained 14 December 2025; data to 28 December 2025"
    texts = " ".join(str(c.value) for row in sheet.iter_rows(max_row=HEADER_ROW) for c in row if c.value)
    for developer in ("emergency_admission", "8669215782e78df2", "TreeSHAP", "extract"):
        assert developer not in texts
    assert "check the person's record before contacting them" in sheet["A4"].value


def test_the_decision_column_is_a_drop_down_of_the_coded_decisions_and_unlocked(workbook):
    path, rows = workbook
    sheet = openpyxl.load_workbook(path)[LIST_SHEET]
    headings = [c.value for c in sheet[HEADER_ROW]]
    column = openpyxl.utils.get_column_letter(headings.index(DECISION_HEADER) + 1)
    [validation] = sheet.data_validations.dataValidation
    assert validation.type == "list"
    assert validation.formula1 == '"' + ",".join(DECISIONS.values()) + '"'
    assert validation.showErrorMessage and validation.errorStyle == "stop"  # other values refused
    assert validation.allow_blank
    assert str(validation.sqref) == f"{column}{HEADER_ROW + 1}:{column}{HEADER_ROW + len(rows)}"
    for row in range(HEADER_ROW + 1, HEADER_ROW + len(rows) + 1):
        cell = sheet[f"{column}{row}"]
        assert cell.value is None and cell.protection.locked is False
    # The last decision is shown as it came; a person without one has a blank cell.
    last = headings.index(LAST_DECISION) + 1
    assert sheet.cell(row=HEADER_ROW + 1, column=last).value == "Not appropriate now (29/12/2025)"
    assert sheet.cell(row=HEADER_ROW + 2, column=last).value is None


def test_about_this_list_prints_one_page_wide_with_row_heights_and_consistent_caseload_wording(workbook):
    path, _ = workbook
    about = openpyxl.load_workbook(path)[ABOUT_SHEET]
    assert (about.page_setup.fitToWidth, about.page_setup.fitToHeight) == (1, 0)
    assert all(about.row_dimensions[r].height for r in range(1, about.max_row + 1) if about.cell(r, 1).value)
    texts = " ".join(str(c.value) for row in about.iter_rows() for c in row if c.value)
    assert "TreeSHAP" not in texts and "MDT decision" in texts
    # This MDT flags caseload patients and lists them: nothing may say they are left off.
    assert "Flagged: people already on an active virtual-ward" in texts
    assert "leaves caseload patients off" not in texts
    excluding = Mdt(**{**MDT.__dict__, "exclusions": ExclusionSettings(active_caseload="exclude")})
    assert LEFT_CASELOAD in dict(leaver_notes(excluding))


def test_the_csv_carries_marking_data_date_and_caveat_and_still_parses(tmp_path):
    rows = fifty_rows(5)
    path = tmp_path / "list.csv"
    write_csv(rows, path, csv_preamble(MDT, INFO))
    head = path.read_text(encoding="utf-8").splitlines()[:4]
    assert head[0] == '"# OFFICIAL-SENSITIVE: personal data"'
    assert "records up to 2025-12-28 (data date)" in head[1] and "week of 05 January 2026" in head[1]
    assert "Check the person's record before contacting them" in head[2]
    assert head[3].startswith("Rank,Person ID,")
    back = read_list_csv(path, dtype={"Person ID": str})
    assert back["Person ID"].tolist() == rows["Person ID"].tolist()
    assert back.columns.tolist() == rows.columns.tolist()
    pd.testing.assert_frame_equal(pd.read_csv(path, skiprows=3), read_list_csv(path))  # as documented


def test_a_comma_in_the_mdts_name_cannot_start_a_new_csv_cell(tmp_path):
    mdt = Mdt(**{**MDT.__dict__, "name": "North, =1+1 team"})
    path = tmp_path / "list.csv"
    write_csv(fifty_rows(2), path, csv_preamble(mdt, INFO))
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        preamble = list(csv.reader(handle))[:3]
    assert all(len(row) == 1 and row[0].startswith("# ") for row in preamble)


SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.slow
@pytest.mark.skipif(
    SOFFICE is None or shutil.which("pdftotext") is None, reason="LibreOffice or poppler missing"
)
def test_libreoffice_prints_fifty_people_on_a_few_pages_one_row_per_person(workbook, tmp_path):
    path, rows = workbook
    profile = tmp_path / "profile"  # its own profile: runs beside a user's LibreOffice
    subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / (path.stem + ".pdf")
    pages = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout.split("\f")
    list_pages = [p for p in pages if any(pid in p for pid in rows["Person ID"])]
    # 16 A4 pages split by column before; now one page wide, a few pages down (7 with a long social
    # care text on every third row).
    assert len(list_pages) <= 7
    for page in list_pages:
        assert "Rank" in page and "MDT decision" in page  # headings repeat on every page
        assert "OFFICIAL-SENSITIVE" in page and "Check the person's record before contacting them" in page
    # Printed at 8 points or more: a 10-point word's box is 1.15 em high at full size.
    boxes = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    [box] = re.findall(rf'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">{rows["Person ID"][0]}<', boxes)
    assert (float(box[1]) - float(box[0])) / 1.15 >= 7.95
    for _, person in rows.iterrows():
        [page] = [p for p in list_pages if person["Person ID"] in p]
        # Rank, ID and risk on one line; the reasons and the decision heading on the same page.
        assert re.search(
            rf"^\s*{person['Rank']}\s+{person['Person ID']}\s+\S+\s+{person['Risk (%)']}", page, re.M
        )
        assert person["Reason 1"].split()[0] in page and person["Reason 3"].split()[0] in page
