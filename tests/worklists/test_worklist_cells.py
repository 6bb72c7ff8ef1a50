"""No text from an extract or a setting ever becomes a formula, in any sheet or file (issue 16)."""

import csv
import json
import zipfile
from datetime import date, timedelta

import openpyxl
import pandas as pd
import pytest
from openpyxl import Workbook
from worklist_fixtures import AS_OF, PRACTICES, context_of, contributions_for, make_features, score

from riskstrat.pipelines.weekly import WeeklyInputs, run_worklists
from riskstrat.worklists.cells import (
    ELLIPSIS,
    FORMULA_STARTS,
    HEADER_FOOTER_MAX,
    REPLACEMENT,
    header_footer_text,
    inert_frame,
    inert_text,
    put,
    seal_workbook,
)
from riskstrat.worklists.export import CSV_PREAMBLE_LINES
from riskstrat.worklists.settings import MdtSettings, mdt_slug

WEEK = date(2026, 1, 5)
HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "[/]",
    "\x1b[31mred",
    "A&B",
    "#N/A",
    " =1+1",
    "\r=2",
]
"""Person IDs (and other text) a hostile or broken extract may hold."""
BAD_MDT = '=HYPERLINK("http://x","MDT")'
BAD_NEIGHBOURHOOD = "@North"
BAD_PRACTICE = "+P1"
BAD_TEAM = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\n=1"),  # a bare carriage return would split the CSV row
        ("a\r\nb\rc", "a\nb\nc"),
        ("\n@x", "'\n@x"),
        (" =1+1", "' =1+1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("\x1b[31mred", f"{REPLACEMENT}[31mred"),
        ("\x00x\x7f\x9b", f"{REPLACEMENT}x{REPLACEMENT}{REPLACEMENT}"),
        ("=\x1b", f"'={REPLACEMENT}"),
        ("[/]", "[/]"),
        ("A&B", "A&B"),
        ("PID00001", "PID00001"),
        ("line\nbreak", "line\nbreak"),
        ("", ""),
        # Bidirectional controls: "\u202e-High" would display as "hgiH-".
        ("\u202eHigh", f"{REPLACEMENT}High"),
        ("\u202e-High", f"'{REPLACEMENT}-High"),  # a formula character behind a replaced one
        (
            "a\u200eb\u200fc\u061cd\u202ae\u202cf\u2066g\u2069",
            f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}d"
            f"{REPLACEMENT}e{REPLACEMENT}f{REPLACEMENT}g{REPLACEMENT}",
        ),
        # Invisible characters: "PID\u200b1" must not look like "PID1".
        ("PID\u200b1", f"PID{REPLACEMENT}1"),
        ("a\u200cb\u200dc\u2060d\u2064e\ufefff\u00adg", "a?b?c?d?e?f?g".replace("?", REPLACEMENT)),
        ("North\U000e0041\U000e0042", f"North{REPLACEMENT}{REPLACEMENT}"),  # tag characters (hidden text)
        ("\u200b=1+1", f"'{REPLACEMENT}=1+1"),
        ("\ufeff@SUM(A1)", f"'{REPLACEMENT}@SUM(A1)"),
        (" \u2060 -1", f"' {REPLACEMENT} -1"),
        (f"{REPLACEMENT}=1", f"'{REPLACEMENT}=1"),
        ("\U0001f468\u200d\U0001f469", f"\U0001f468{REPLACEMENT}\U0001f469"),  # ZWJ in an emoji: replaced too
        ("a\u2028b\u2029c", "a\nb\nc"),  # line and paragraph separators: a line break stays one
        ("\u2028=1", "'\n=1"),
    ],
)
def test_the_rule(text, written):
    assert inert_text(text) == written
    assert inert_text(written) == written  # applying it again changes nothing


def test_every_invisible_or_format_character_is_replaced_and_escaped_on_the_terminal():
    import sys
    import unicodedata

    from riskstrat.pipelines import terminal

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) == "Cf":  # every format character of this Python's Unicode
            assert inert_text(f"a{char}b") == f"a{REPLACEMENT}b", hex(code)
            assert terminal.printable(char).startswith("\\"), hex(code)
    for char in "\u034f\u115f\u3164\ufe0f\U000e0100":  # invisible, though not format characters
        assert inert_text(char) == REPLACEMENT and terminal.printable(char).startswith("\\")


def test_text_is_always_a_string_cell_and_numbers_stay_numbers():
    book = Workbook()
    sheet = book.active
    assert put(sheet["A1"], "=1+1").data_type == "s"
    assert sheet["A1"].value == "'=1+1"
    assert put(sheet["A2"], "#N/A").data_type == "s"  # openpyxl would make it an error value
    assert put(sheet["A3"], -2.5).value == -2.5 and sheet["A3"].data_type == "n"
    assert put(sheet["A4"], date(2026, 1, 5)).value == date(2026, 1, 5)
    assert put(sheet["A5"], float("nan")).value is None
    assert put(sheet["A6"], "\x1b[0m").value == f"{REPLACEMENT}[0m"  # no IllegalCharacterError
    sheet["B1"] = "=SUM(A1:A3)"  # set directly, bypassing put: the seal catches it
    sheet["B2"] = "#DIV/0!"
    seal_workbook(book)
    assert sheet["B1"].data_type == "s" and sheet["B1"].value == "'=SUM(A1:A3)"
    assert sheet["B2"].data_type == "s"


def test_csv_frame_escapes_text_only():
    frame = pd.DataFrame({"=id": ["=1", "-x", "ok"], "Risk (%)": [-1.5, 2.0, 3.0], "n": [-1, 0, 1]})
    out = inert_frame(frame)
    assert list(out.columns) == ["'=id", "Risk (%)", "n"]
    assert out["'=id"].tolist() == ["'=1", "'-x", "ok"]
    assert out["Risk (%)"].tolist() == [-1.5, 2.0, 3.0] and out["n"].tolist() == [-1, 0, 1]


def _header_units(text):
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("name", ["N" * 400, "A&" * 200, "&" * 400, "\U0001f3e5" * 300, "=" + "x&" * 250])
def test_a_long_header_or_footer_text_is_cut_to_excel_s_limit_with_an_ellipsis(name):
    beside = ("OFFICIAL-SENSITIVE: personal data", "Page &P of &N")
    text = header_footer_text(name, beside=beside)
    whole = f"&L{text}&C{beside[0]}&R{beside[1]}"
    assert _header_units(whole) <= HEADER_FOOTER_MAX
    assert _header_units(whole) >= HEADER_FOOTER_MAX - 2  # cut no shorter than it must be
    assert text.endswith(ELLIPSIS)
    body = text[: -len(ELLIPSIS)]
    assert body.replace("&&", "").count("&") == 0  # no '&&' pair split, no stray code
    assert inert_text(name).startswith(body.replace("&&", "&"))
    assert body[:1] not in FORMULA_STARTS


def test_a_short_header_or_footer_text_is_only_made_inert():
    assert header_footer_text("South & Co", beside=("OFFICIAL",)) == "South && Co"
    assert header_footer_text("=1") == "'=1"
    room = HEADER_FOOTER_MAX - 6
    assert header_footer_text("x" * room) == "x" * room  # exactly at the limit: not cut
    assert header_footer_text("x" * (room + 1)) == "x" * (room - 1) + ELLIPSIS


def test_mdt_file_names_cannot_leave_the_week_folder():
    for name in ("../../etc/passwd", "a/b\\c", "..", "=cmd|' /C calc'!A0", "\x1b[31m"):
        slug = mdt_slug(name)
        assert slug and set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789-"), slug
        assert slug not in (".", "..")


def test_two_mdts_sharing_a_file_name_are_refused(scored):
    from riskstrat.errors import RiskstratError
    from riskstrat.worklists.selection import select_worklists
    from riskstrat.worklists.settings import ExclusionSettings, Mdt

    def mdt(name):
        return Mdt(name, ("P00001",), "emergency_admission", 18, 5, None, ExclusionSettings())

    # Neighbourhood MDTs are named from the practice file, where "North" and "north/" may both occur.
    with pytest.raises(RiskstratError, match=r"would both be written to north\.xlsx"):
        select_worklists(scored, [mdt("North"), mdt("north/")], MdtSettings().risk_bands)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture()
def hostile(tmp_path, boosters):
    """A population whose IDs, practice, neighbourhood, team, MDT and band names are hostile."""
    features = make_features(600, seed=7)
    practice = {"P00001": BAD_PRACTICE, "P00002": "P00002", "P00003": "P00003"}
    features["practice_code"] = features["practice_code"].map(practice)
    scored = score(features, boosters)
    north = scored.loc[scored["practice_code"] != "P00003"].nlargest(len(HOSTILE), "p_emergency_admission")
    renamed = dict(zip(north["person_id"], HOSTILE, strict=True))
    features["person_id"] = features["person_id"].replace(renamed)
    scored["person_id"] = scored["person_id"].replace(renamed)
    scored.loc[scored["person_id"] == HOSTILE[0], ["on_caseload", "caseload_team"]] = [True, BAD_TEAM]
    practices = PRACTICES.assign(
        practice_code=PRACTICES["practice_code"].map(practice),
        neighbourhood=[BAD_NEIGHBOURHOOD, BAD_NEIGHBOURHOOD, "South"],
    )
    path = tmp_path / "practices.csv"
    practices.to_csv(path, index=False)
    settings = MdtSettings.model_validate(
        {
            "practices_file": str(path),
            "default_mdt": {"capacity_people": 20},
            "mdts": [
                {"name": BAD_MDT, "neighbourhood": BAD_NEIGHBOURHOOD},
                {"name": "South & Co", "practices": ["P00003"], "outcome": "frequent_attendance"},
            ],
            "risk_bands": {
                "basis": "percentile",
                "bands": [{"name": "=Very high", "min": 99.5}, {"name": "+High", "min": 98}],
                "otherwise": "-Lower",
            },
        }
    )
    return WeeklyInputs(
        week=WEEK,
        data_date=AS_OF,
        scored=scored,
        features=features,
        contributions=contributions_for(boosters),
        settings=settings,
        output_dir=tmp_path / "outputs",
        listed_context=context_of(
            {
                "apc_spells": pd.DataFrame(
                    {"person_id": [HOSTILE[1]], "admission_date": ["2025-11-02"], "admission_method": ["21"]}
                )
            }
        ),
    )


def assert_inert_workbook(path):
    """No formula or error cell, no formula-like or control-character text, anywhere in the workbook."""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name), name
    book = openpyxl.load_workbook(path)
    seen = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type not in ("f", "e"), (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert inert_text(cell.value) == cell.value, (sheet.title, cell.coordinate)
                    assert "\x1b" not in cell.value
                    seen.append(cell.value)
        for part in (sheet.oddHeader.left, sheet.oddFooter.left):
            text = part.text or ""  # the hidden issue stamp has no header
            assert text[:1] not in FORMULA_STARTS and "\x1b" not in text
    return book, seen


def csv_cells(path):
    """The CSV's rows after its preamble (each preamble line is one cell starting '# ')."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    preamble = rows[:CSV_PREAMBLE_LINES]
    assert all(len(row) == 1 and row[0].startswith("# ") for row in preamble), preamble
    return rows[CSV_PREAMBLE_LINES:]


def assert_inert_csv(path):
    rows = csv_cells(path)
    for row in rows:
        for value in row:
            assert "\x1b" not in value
            if value[:1] in FORMULA_STARTS:
                float(value)  # only a number (a negative one) may start like a formula
    return rows


def test_hostile_text_reaches_every_sheet_and_the_csv_as_inert_text(hostile):
    folder = run_worklists(hostile)
    slug = mdt_slug(BAD_MDT)
    assert slug == "hyperlink-http-x-mdt"
    assert {p.name for p in folder.iterdir()} >= {f"{slug}.xlsx", f"{slug}.csv", "manifest.json"}
    book, seen = assert_inert_workbook(folder / f"{slug}.xlsx")
    for text in (*HOSTILE, BAD_MDT, BAD_TEAM, BAD_PRACTICE, "=Very high", "-Lower"):
        written = inert_text(text).replace("\r", "\n")  # XML reads a carriage return as a line feed
        assert any(written in value for value in seen), text
    sheet = book["Worklist"]
    assert sheet["A1"].value.startswith("'=HYPERLINK(")  # the title, not Err:509
    ids = [sheet.cell(row=r, column=2).value for r in range(6, sheet.max_row + 1)]
    assert {inert_text(h).replace("\r", "\n") for h in HOSTILE} <= set(ids)
    assert f"{REPLACEMENT}[31mred" in ids and "[/]" in ids and "A&B" in ids
    risks = [sheet.cell(row=r, column=4) for r in range(6, sheet.max_row + 1)]
    assert all(c.data_type == "n" and isinstance(c.value, int | float) for c in risks)
    assert "&&" in sheet.oddHeader.left.text or "&" not in sheet.oddHeader.left.text
    about = " ".join(seen)
    assert inert_text(BAD_PRACTICE) in about  # the practices in "Registered"
    south_header = openpyxl.load_workbook(folder / "south-co.xlsx")["Worklist"].oddHeader.left.text
    assert south_header.startswith("South && Co")

    rows = assert_inert_csv(folder / f"{slug}.csv")
    header, body = rows[0], rows[1:]
    column = {name: i for i, name in enumerate(header)}
    csv_ids = {row[column["Person ID"]] for row in body}
    expected = {'\'=HYPERLINK("http://x","y")', "'+1", "'-2+3", "'@SUM(A1)", "'\t=1", "' =1+1", "'\n=2"}
    assert expected <= csv_ids
    assert len({len(row) for row in rows}) == 1  # no line break split a row
    assert {row[column["Practice"]] for row in body} <= {"'+P1", "P00002"}
    assert "'=cmd|' /C calc'!A0" in {row[column["On caseload"]] for row in body}
    assert {row[column["Risk band"]] for row in body} <= {"'=Very high", "'+High", "'-Lower"}
    assert_inert_csv(folder / "south-co.csv")

    manifest_text = (folder / "manifest.json").read_text(encoding="utf-8")
    assert "\x1b" not in manifest_text
    assert BAD_MDT in json.loads(manifest_text)["mdts"]  # JSON keeps the name as it is, escaped


def test_an_injected_id_in_the_history_leaves_the_list_as_inert_text(hostile):
    run_worklists(hostile)
    hostile.week = WEEK + timedelta(7)
    gone = hostile.scored["person_id"].isin(HOSTILE)
    scored = hostile.scored.copy()
    scored.loc[gone, "p_emergency_admission"] = 0.0001  # they all leave the list
    hostile.scored = scored
    folder = run_worklists(hostile)
    book, _ = assert_inert_workbook(folder / f"{mdt_slug(BAD_MDT)}.xlsx")
    left = book["Left the list"]
    ids = [left.cell(row=r, column=1).value for r in range(5, left.max_row + 1)]
    assert {inert_text(h).replace("\r", "\n") for h in HOSTILE} <= set(ids)
    assert all(left.cell(row=r, column=1).data_type == "s" for r in range(5, left.max_row + 1))
    assert '\'=HYPERLINK("http://x","y")' in ids


def test_the_longest_mdt_name_keeps_every_printed_header_and_footer_within_excel_s_limit(hostile):
    # The settings cap an MDT name (400 characters are tried on header_footer_text above); at the
    # cap, a name full of '&' still overflows once each '&' is doubled.
    from riskstrat.worklists.settings import MDT_NAME_MAX_LENGTH

    long_name = "L" + "&" * (MDT_NAME_MAX_LENGTH - 1)
    assert len(long_name) + long_name.count("&") > HEADER_FOOTER_MAX - 6 - 33 - 21
    settings = hostile.settings.model_dump()
    settings["mdts"][1]["name"] = long_name
    hostile.settings = MdtSettings.model_validate(settings)
    folder = run_worklists(hostile)
    [path] = [p for p in folder.glob("*.xlsx") if p.name != f"{mdt_slug(BAD_MDT)}.xlsx"]
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
    import re
    from xml.sax.saxutils import unescape

    found = []
    for xml in sheets:
        for tag in ("oddHeader", "oddFooter"):
            for raw in re.findall(f"<{tag}>(.*?)</{tag}>", xml, flags=re.S):
                found.append(unescape(raw, {"&quot;": '"', "&apos;": "'"}))
    assert len(found) >= 6  # a header and a footer on each printed sheet
    named = [text for text in found if "L&&&&" in text]
    assert len(named) >= 3  # the MDT's name heads each printed sheet
    for text in found:
        assert _header_units(text) <= HEADER_FOOTER_MAX, (len(text), text)
    for text in named:
        # The name is cut short (a section must not run into the next), with an ellipsis.
        assert text.startswith('&L&"Arial,Regular"&8 L&&&&') and ELLIPSIS in text
        cut = text[text.index("L&&") : text.index(ELLIPSIS)]
        assert all(len(run) % 2 == 0 for run in re.findall("&+", cut))  # no '&&' pair split
