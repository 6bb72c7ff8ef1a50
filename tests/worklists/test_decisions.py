"""The MDT's decisions come back: the stamp, the import's checks, the history, and next week's list."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook
from worklist_fixtures import AS_OF, contributions_for

from riskstrat.catalog import output_catalog
from riskstrat.pipelines.decisions import (
    IMPORTED_FOLDER,
    import_decisions,
    import_returns,
    read_decision_history,
)
from riskstrat.pipelines.weekly import WeeklyInputs, run_worklists
from riskstrat.worklists.decisions import (
    DECISION_HEADER,
    DECISIONS,
    STAMP_SHEET,
    DecisionImportError,
    decision_code,
    read_stamp,
    stamp_workbook,
)
from riskstrat.worklists.settings import DecisionSettings, MdtSettings

WEEK = date(2026, 1, 5)
NORTH = "North virtual ward"
NORTH_FILE = "north-virtual-ward.xlsx"
WHEN = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- helpers


@pytest.fixture()
def week_inputs(tmp_path, features, scored, boosters, mdt_settings) -> WeeklyInputs:
    return WeeklyInputs(
        week=WEEK,
        data_date=AS_OF,
        scored=scored,
        features=features,
        contributions=contributions_for(boosters),
        settings=mdt_settings,
        output_dir=tmp_path / "out",
    )


@pytest.fixture()
def published(week_inputs) -> Path:
    """Week 1 published; its folder."""
    return run_worklists(week_inputs)


def header_row(sheet) -> tuple[int, dict[str, int]]:
    for row in sheet.iter_rows(min_row=1, max_row=30):
        found = {str(c.value): c.column for c in row if c.value is not None}
        if DECISION_HEADER in found and "Person ID" in found:
            return row[0].row, found
    raise AssertionError("no heading row")


def fill(source: Path, target: Path, decisions: dict[int, str | None], edit=None) -> Path:
    """A copy of an issued list with decisions by rank (as the MDT would pick them), saved by openpyxl."""
    book = load_workbook(source)
    sheet = book.worksheets[0]
    header, columns = header_row(sheet)
    row = header + 1
    while sheet.cell(row=row, column=columns["Person ID"]).value:
        rank = int(sheet.cell(row=row, column=columns["Rank"]).value)
        if rank in decisions:
            sheet.cell(row=row, column=columns[DECISION_HEADER]).value = decisions[rank]
        row += 1
    if edit is not None:
        edit(sheet, header, columns)
    target.parent.mkdir(parents=True, exist_ok=True)
    book.save(target)
    return target


def issued_list(folder: Path, mdt: str = NORTH) -> pd.DataFrame:
    history = pd.read_parquet(folder / "history.parquet")
    return history.loc[history["mdt"] == mdt].sort_values("rank").reset_index(drop=True)


# ----------------------------------------------------------------------------- the stamp


def test_the_stamp_is_very_hidden_protected_and_reads_back():
    book = Workbook()
    rows = pd.DataFrame({"Person ID": ["B2", "A1"], "Rank": [2, 1], "Risk (%)": [40.25, 51.0]})
    stamp_workbook(book, mdt="North", week=WEEK, rows=rows)
    sheet = book[STAMP_SHEET]
    assert sheet.sheet_state == "veryHidden" and sheet.protection.sheet
    issue = read_stamp(book, "north.xlsx")
    assert (issue.mdt, issue.week) == ("North", WEEK)
    assert issue.people.sort_values("rank")["person_id"].tolist() == ["A1", "B2"]
    sheet["A8"].value = "B3"  # someone edits the hidden sheet
    with pytest.raises(DecisionImportError, match="was edited"):
        read_stamp(book, "north.xlsx")


def test_decision_cells_take_the_wording_or_the_code_and_nothing_else():
    assert decision_code("  not APPROPRIATE   now ") == "not_appropriate"
    assert decision_code("declined") == "declined"
    assert decision_code(None) is None and decision_code("  ") is None
    with pytest.raises(ValueError):
        decision_code("Mrs Smith says no")


# ----------------------------------------------------------------------------- the import


def test_an_openpyxl_filled_list_imports_coded_decisions(published, tmp_path):
    returned = fill(
        published / NORTH_FILE,
        tmp_path / "back" / "north.xlsx",
        {1: DECISIONS["not_appropriate"], 2: DECISIONS["added_to_caseload"], 3: None},
    )
    (result,) = import_decisions(published.parent.parent, [returned], WHEN)
    assert (result.mdt, result.week, result.listed, result.recorded, result.changed) == (
        NORTH,
        WEEK,
        20,
        2,
        2,
    )
    history = read_decision_history(published.parent.parent)
    issued = issued_list(published)
    assert sorted(history["decision"]) == ["added_to_caseload", "not_appropriate"]  # the blank: nothing
    by_person = history.set_index("person_id")
    assert by_person.loc[issued["person_id"][0], "decision"] == "not_appropriate"
    assert by_person.loc[issued["person_id"][0], "issued_probability"] == pytest.approx(
        issued["probability"][0]
    )
    assert set(history["mdt"]) == {NORTH} and set(history["week"]) == {"2026-01-05"}
    assert history.columns.tolist() == [
        "person_id", "mdt", "week", "decision", "issued_probability", "imported_at", "source_digest"
    ]  # fmt: skip


def test_importing_the_same_file_twice_changes_nothing(published, tmp_path):
    output_dir = published.parent.parent
    returned = fill(published / NORTH_FILE, tmp_path / "north.xlsx", {1: DECISIONS["declined"]})
    import_decisions(output_dir, [returned], WHEN)
    path = output_catalog(output_dir).decision_history
    before = path.read_bytes()
    (again,) = import_decisions(output_dir, [returned], WHEN + timedelta(days=1))
    assert again.changed == 0 and path.read_bytes() == before


def test_a_corrected_file_replaces_a_persons_decision_and_blanks_keep_theirs(published, tmp_path):
    output_dir = published.parent.parent
    first = fill(
        published / NORTH_FILE, tmp_path / "a.xlsx", {1: DECISIONS["declined"], 2: DECISIONS["declined"]}
    )
    second = fill(published / NORTH_FILE, tmp_path / "b.xlsx", {1: DECISIONS["could_not_contact"]})
    import_decisions(output_dir, [first], WHEN)
    import_decisions(output_dir, [second], WHEN)
    issued = issued_list(published)
    decided = read_decision_history(output_dir).set_index("person_id")["decision"]
    assert decided[issued["person_id"][0]] == "could_not_contact"
    assert decided[issued["person_id"][1]] == "declined"
    assert len(decided) == 2


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_a_list_saved_again_by_libreoffice_still_imports(published, tmp_path):
    filled = fill(
        published / NORTH_FILE, tmp_path / "filled" / "north.xlsx", {1: DECISIONS["declined"], 5: None}
    )
    resaved = tmp_path / "resaved"
    subprocess.run(
        ["soffice", f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless",
         "--convert-to", "xlsx", "--outdir", str(resaved), str(filled)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    (result,) = import_decisions(published.parent.parent, [resaved / "north.xlsx"], WHEN)
    assert (result.mdt, result.recorded) == (NORTH, 1)


def refused(output_dir: Path, path: Path, match: str) -> DecisionImportError:
    with pytest.raises(DecisionImportError, match=match) as caught:
        import_decisions(output_dir, [path], WHEN)
    assert path.name in caught.value.log_message
    return caught.value


def restamp(path: Path, target: Path, *, mdt: str, week: date) -> Path:
    """The list re-stamped as another MDT's or week's (a consistent stamp, as if issued so)."""
    book = load_workbook(path)
    issue = read_stamp(book, path.name)
    del book[STAMP_SHEET]
    rows = issue.people.rename(columns={"person_id": "Person ID", "rank": "Rank", "risk": "Risk (%)"})
    stamp_workbook(book, mdt=mdt, week=week, rows=rows)
    book.save(target)
    return target


def test_a_list_of_another_mdt_or_week_is_refused(published, tmp_path):
    output_dir = published.parent.parent
    other_mdt = restamp(published / NORTH_FILE, tmp_path / "other-mdt.xlsx", mdt="Elsewhere", week=WEEK)
    error = refused(output_dir, other_mdt, "MDT 'Elsewhere', week 2026-01-05 has no published list")
    assert "hint" not in error.message
    other_week = restamp(
        published / NORTH_FILE, tmp_path / "other-week.xlsx", mdt=NORTH, week=WEEK + timedelta(7)
    )
    refused(output_dir, other_week, "week 2026-01-12 has no published list")
    south_as_north = restamp(
        published / "south-hiu-service.xlsx", tmp_path / "south-as-north.xlsx", mdt=NORTH, week=WEEK
    )
    refused(output_dir, south_as_north, "is not the list published for MDT 'North virtual ward'")


def test_an_unknown_person_is_refused_with_the_count_and_an_example_id_kept_out_of_logs(published, tmp_path):
    def add_person(sheet, header, columns):
        row = header + 1
        while sheet.cell(row=row, column=columns["Person ID"]).value:
            row += 1
        sheet.cell(row=row, column=columns["Person ID"]).value = "STRANGER01"
        sheet.cell(row=row, column=columns["Rank"]).value = 21
        sheet.cell(row=row, column=columns["Risk (%)"]).value = 1.0

    path = fill(published / NORTH_FILE, tmp_path / "north.xlsx", {}, edit=add_person)
    error = refused(published.parent.parent, path, r"1 row not on the list issued")
    assert "STRANGER01" in error.message and "STRANGER01" not in str(error)
    assert "MDT 'North virtual ward', week 2026-01-05" in str(error)


@pytest.mark.parametrize("column, value", [("Rank", 99), ("Risk (%)", 99.9)])
def test_a_tampered_rank_or_risk_is_refused(published, tmp_path, column, value):
    def tamper(sheet, header, columns):
        sheet.cell(row=header + 3, column=columns[column]).value = value

    path = fill(published / NORTH_FILE, tmp_path / "north.xlsx", {1: DECISIONS["declined"]}, edit=tamper)
    refused(published.parent.parent, path, "1 row with a rank or risk that differs from the list issued")
    assert read_decision_history(published.parent.parent).empty


def test_an_invalid_decision_is_refused_without_echoing_it(published, tmp_path):
    path = fill(published / NORTH_FILE, tmp_path / "north.xlsx", {1: "Lives alone, see notes", 2: "Declined"})
    error = refused(
        published.parent.parent, path, "1 row with an MDT decision that is not one of the choices"
    )
    assert "Lives alone" not in error.message


def test_a_file_that_is_not_a_workbook_or_not_a_list_is_refused(published, tmp_path):
    junk = tmp_path / "notes.xlsx"
    junk.write_text("not a workbook")
    refused(published.parent.parent, junk, "cannot be opened as an XLSX workbook")
    plain = tmp_path / "plain.xlsx"
    Workbook().save(plain)
    refused(published.parent.parent, plain, "not a worklist issued by riskstrat")


# ----------------------------------------------------------------------------- reading every decision


def test_decisions_below_a_blank_row_are_read(published, tmp_path):
    def blank_row_five(sheet, header, columns):
        for column in range(1, sheet.max_column + 1):
            sheet.cell(row=header + 5, column=column).value = None  # the MDT deleted a person's row

    path = fill(
        published / NORTH_FILE,
        tmp_path / "north.xlsx",
        {1: DECISIONS["declined"], 12: DECISIONS["added_to_caseload"], 20: DECISIONS["could_not_contact"]},
        edit=blank_row_five,
    )
    (result,) = import_decisions(published.parent.parent, [path], WHEN)
    assert (result.listed, result.recorded) == (19, 3)
    issued = issued_list(published)
    decided = read_decision_history(published.parent.parent).set_index("person_id")["decision"]
    assert decided[issued["person_id"][19]] == "could_not_contact"


def test_a_decision_on_a_row_without_its_person_id_is_refused(published, tmp_path):
    def clear_id(sheet, header, columns):
        sheet.cell(row=header + 7, column=columns["Person ID"]).value = None

    path = fill(
        published / NORTH_FILE,
        tmp_path / "north.xlsx",
        {1: DECISIONS["declined"], 7: "Declined"},
        edit=clear_id,
    )
    error = refused(
        published.parent.parent, path, "1 row of sheet 'Worklist' holds an MDT decision but no Person ID"
    )
    assert f"row {header_row(load_workbook(path).worksheets[0])[0] + 7}" in str(error)
    assert read_decision_history(published.parent.parent).empty


def test_hidden_sheets_are_not_read(published, tmp_path):
    book = load_workbook(
        fill(
            published / NORTH_FILE,
            tmp_path / "copy.xlsx",
            {1: DECISIONS["declined"], 2: DECISIONS["declined"]},
        )
    )
    copy = book.copy_worksheet(book.worksheets[0])  # a hidden copy with other decisions, kept first
    copy.title = "Old copy"
    copy.sheet_state = "hidden"
    book.move_sheet(copy, offset=-book.index(copy))
    listed = book["Worklist"]
    header, columns = header_row(listed)
    listed.cell(row=header + 1, column=columns[DECISION_HEADER]).value = DECISIONS["could_not_contact"]
    listed.cell(row=header + 2, column=columns[DECISION_HEADER]).value = None
    book.save(path := tmp_path / "north.xlsx")
    (result,) = import_decisions(published.parent.parent, [path], WHEN)
    assert result.recorded == 1
    history = read_decision_history(published.parent.parent)
    assert history["decision"].tolist() == ["could_not_contact"]


def test_a_file_with_two_visible_lists_is_refused_naming_them(published, tmp_path):
    book = load_workbook(fill(published / NORTH_FILE, tmp_path / "copy.xlsx", {1: DECISIONS["declined"]}))
    book.copy_worksheet(book.worksheets[0]).title = "Worklist (2)"
    book.save(path := tmp_path / "north.xlsx")
    refused(
        published.parent.parent,
        path,
        r"2 visible sheets have the list's headings \('Worklist', 'Worklist \(2\)'\)",
    )


def test_a_file_with_no_decision_imports_nothing_and_says_so(published, tmp_path):
    output_dir = published.parent.parent
    path = fill(published / NORTH_FILE, tmp_path / "north.xlsx", {})
    (result,) = import_decisions(output_dir, [path], WHEN)
    assert result.empty and result.changed == 0
    assert result.summary().startswith(
        "Warning: north.xlsx: North virtual ward, week 2026-01-05: no MDT decision"
    )
    assert "nothing was imported" in result.summary()
    assert not output_catalog(output_dir).decision_history.exists()


# ----------------------------------------------------------------------------- atomicity


def test_when_the_second_file_is_bad_nothing_is_recorded(published, tmp_path):
    output_dir = published.parent.parent
    good = fill(published / NORTH_FILE, tmp_path / "good.xlsx", {1: DECISIONS["declined"]})
    earlier = fill(published / NORTH_FILE, tmp_path / "earlier.xlsx", {2: DECISIONS["declined"]})
    import_decisions(output_dir, [earlier], WHEN)
    before = output_catalog(output_dir).decision_history.read_bytes()
    bad = fill(published / NORTH_FILE, tmp_path / "bad.xlsx", {3: "maybe"})
    with pytest.raises(DecisionImportError):
        import_decisions(output_dir, [good, bad], WHEN)
    assert output_catalog(output_dir).decision_history.read_bytes() == before


def test_a_failure_while_writing_leaves_the_history_as_it_was(published, tmp_path, monkeypatch):
    output_dir = published.parent.parent
    import_decisions(output_dir, [fill(published / NORTH_FILE, tmp_path / "a.xlsx", {2: "Declined"})], WHEN)
    path = output_catalog(output_dir).decision_history
    before = path.read_bytes()

    def broken_to_parquet(self, target, **kwargs):
        Path(target).write_bytes(b"PAR1 half")  # a partial write, then the disk fills
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken_to_parquet)
    with pytest.raises(OSError):
        import_decisions(
            output_dir, [fill(published / NORTH_FILE, tmp_path / "b.xlsx", {1: "Declined"})], WHEN
        )
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- the returns folder


def test_the_weekly_step_imports_returned_files_and_leaves_refused_ones(published, tmp_path):
    output_dir = published.parent.parent
    returns = tmp_path / "returns"
    fill(published / NORTH_FILE, returns / "north.xlsx", {1: DECISIONS["declined"]})
    fill(published / NORTH_FILE, returns / "north-bad.xlsx", {1: "perhaps"})
    result = import_returns(DecisionSettings(returns_dir=returns), output_dir)
    assert [r.name for r in result.imported] == ["north.xlsx"] and result.refused == ["north-bad.xlsx"]
    assert (returns / IMPORTED_FOLDER / "north.xlsx").is_file()
    assert sorted(p.name for p in returns.glob("*.xlsx")) == ["north-bad.xlsx"]
    assert len(read_decision_history(output_dir)) == 1


def test_the_weekly_step_leaves_a_file_with_no_decision_in_place_with_a_warning(published, tmp_path, caplog):
    returns = tmp_path / "returns"
    fill(published / NORTH_FILE, returns / "north.xlsx", {})
    with caplog.at_level("WARNING"):
        result = import_returns(DecisionSettings(returns_dir=returns), published.parent.parent)
    assert (result.imported, result.refused, result.empty) == ([], [], ["north.xlsx"])
    assert (returns / "north.xlsx").is_file() and not (returns / IMPORTED_FOLDER).exists()
    assert "left in the returns folder" in caplog.text and "no MDT decision" in caplog.text


def test_the_returns_folder_takes_xlsx_in_any_case(published, tmp_path):
    returns = tmp_path / "returns"
    fill(published / NORTH_FILE, returns / "NORTH.XLSX", {1: DECISIONS["declined"]})
    fill(published / NORTH_FILE, returns / "~$NORTH.XLSX", {2: DECISIONS["declined"]})  # Excel's lock file
    result = import_returns(DecisionSettings(returns_dir=returns), published.parent.parent)
    assert [r.name for r in result.imported] == ["NORTH.XLSX"]
    assert (returns / IMPORTED_FOLDER / "NORTH.XLSX").is_file()
    assert len(read_decision_history(published.parent.parent)) == 1


# ----------------------------------------------------------------------------- next week's list


def next_week(inputs: WeeklyInputs, settings: MdtSettings | None = None) -> pd.DataFrame:
    """Week 2 drawn up on the same risks; North's published history rows and the leavers sheet."""
    inputs.week = WEEK + timedelta(7)
    if settings is not None:
        inputs.settings = settings
    folder = run_worklists(inputs)
    return issued_list(folder)


def decide(published: Path, tmp_path: Path, decisions: dict[int, str]) -> None:
    path = fill(
        published / NORTH_FILE, tmp_path / "decided.xlsx", {r: DECISIONS[c] for r, c in decisions.items()}
    )
    import_decisions(published.parent.parent, [path], WHEN)


def leavers_of(folder: Path) -> pd.DataFrame:
    book = load_workbook(folder / NORTH_FILE, read_only=True)
    rows = list(book["Left the list"].iter_rows(values_only=True))
    start = next(i for i, r in enumerate(rows) if r and "Person ID" in r)
    return pd.DataFrame(rows[start + 1 :], columns=rows[start]).dropna(how="all")


def test_rested_people_leave_the_list_and_the_freed_places_go_to_the_next_people(
    published, week_inputs, tmp_path, scored
):
    issued = issued_list(published)
    decide(
        published, tmp_path, {1: "not_appropriate", 2: "declined", 3: "already_known", 4: "could_not_contact"}
    )
    after = next_week(week_inputs)
    rested = set(issued["person_id"][:3])
    assert not rested & set(after["person_id"])  # rested
    assert issued["person_id"][3] in set(after["person_id"])  # could not contact: stays
    assert len(after) == 20
    north = scored.loc[scored["practice_code"].isin(["P00001", "P00002"])]
    next_people = north.loc[~north["person_id"].isin(rested)].nlargest(20, "p_emergency_admission")
    assert set(after["person_id"]) == set(next_people["person_id"])  # the next three fill the places
    left = leavers_of(output_catalog(published.parent.parent).week(WEEK + timedelta(7)))
    reasons = left.set_index("Person ID")["Why they left"]
    assert reasons[issued["person_id"][0]] == "MDT decision: Not appropriate now"
    assert reasons[issued["person_id"][1]] == "MDT decision: Declined"
    assert reasons[issued["person_id"][2]] == "MDT decision: Already known to a service"


def test_the_rows_carry_the_last_decision_and_its_week(published, week_inputs, tmp_path):
    from riskstrat.pipelines.weekly import select_task

    issued = issued_list(published)
    decide(published, tmp_path, {4: "could_not_contact"})
    week_inputs.week = WEEK + timedelta(7)
    listed = select_task.fn(week_inputs)[NORTH].listed.set_index("person_id")
    person = issued["person_id"][3]
    assert listed.loc[person, "last_decision"] == DECISIONS["could_not_contact"]
    assert listed.loc[person, "last_decision_date"] == WEEK
    assert listed["last_decision"].isna().sum() == len(listed) - 1


def test_a_rest_ends_after_rest_weeks_or_when_the_risk_rises_enough(published, week_inputs, tmp_path, scored):
    from riskstrat.pipelines.weekly import select_task

    issued = issued_list(published)
    person = issued["person_id"][0]
    decide(published, tmp_path, {1: "declined"})
    rules = week_inputs.settings.decisions
    for weeks_after, listed in [(1, False), (rules.rest_weeks, False), (rules.rest_weeks + 1, True)]:
        week_inputs.week = WEEK + timedelta(weeks=weeks_after)
        on = person in set(select_task.fn(week_inputs)[NORTH].listed["person_id"])
        assert on is listed, weeks_after
    week_inputs.week = WEEK + timedelta(7)
    risen = scored.copy()
    at = risen["person_id"] == person
    risen.loc[at, "p_emergency_admission"] += rules.return_if_risk_rises_by / 100 - 0.001
    week_inputs.scored = risen
    assert person not in set(select_task.fn(week_inputs)[NORTH].listed["person_id"])  # not quite enough
    risen.loc[at, "p_emergency_admission"] += 0.002
    assert person in set(select_task.fn(week_inputs)[NORTH].listed["person_id"])


def about_rows(folder: Path) -> dict[str, str]:
    book = load_workbook(folder / NORTH_FILE, read_only=True)
    return {
        str(r[0]): str(r[1])
        for r in book["About this list"].iter_rows(values_only=True)
        if r and r[0] and r[1]
    }


@pytest.mark.parametrize("active_caseload", ["flag", "include", "exclude"])
def test_added_to_caseload_leaves_the_list_and_the_place_goes_to_the_next_person(
    published, week_inputs, tmp_path, mdt_settings, scored, active_caseload
):
    issued = issued_list(published)
    person = issued["person_id"][1]
    decide(published, tmp_path, {2: "added_to_caseload"})
    data = mdt_settings.model_dump(mode="json")
    data["default_mdt"]["exclusions"]["active_caseload"] = active_caseload
    settings = MdtSettings.model_validate(data)
    after = next_week(week_inputs, settings)
    assert person not in set(after["person_id"]) and len(after) == 20
    # The place goes to the next person by risk (among those the MDT's caseload rule lists).
    north = scored.loc[scored["practice_code"].isin(["P00001", "P00002"]) & (scored["person_id"] != person)]
    if active_caseload == "exclude":
        north = north.loc[~north["on_caseload"]]
    assert set(after["person_id"]) == set(north.nlargest(20, "p_emergency_admission")["person_id"])
    folder = output_catalog(published.parent.parent).week(WEEK + timedelta(7))
    reasons = leavers_of(folder).set_index("Person ID")["Why they left"]
    assert reasons[person] == "MDT decision: Added to caseload / virtual ward"
    assert "(1 person)" in about_rows(folder)["After an MDT decision"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["mdts"][NORTH]["excluded_added_to_caseload"] == 1


def test_added_to_caseload_comes_back_after_caseload_weeks(published, week_inputs, tmp_path):
    from riskstrat.pipelines.weekly import select_task

    person = issued_list(published)["person_id"][1]
    decide(published, tmp_path, {2: "added_to_caseload"})
    weeks = week_inputs.settings.decisions.caseload_weeks
    for weeks_after, listed in [(1, False), (weeks, False), (weeks + 1, True)]:
        week_inputs.week = WEEK + timedelta(weeks=weeks_after)
        selection = select_task.fn(week_inputs)[NORTH]
        assert (person in set(selection.listed["person_id"])) is listed, weeks_after
        assert selection.held_by_decision == ({} if listed else {person: "added_to_caseload"})


def test_a_decision_rule_setting_must_name_every_code_and_a_known_action():
    from riskstrat.errors import SettingsError
    from riskstrat.settings import parse_settings

    source = Path("configs/mdts.yaml")
    with pytest.raises(SettingsError, match=r"decisions.actions.*missing \['added_to_caseload'"):
        parse_settings({"decisions": {"actions": {"declined": "rest"}}}, MdtSettings, source)
    with pytest.raises(SettingsError, match="unknown decision code"):
        parse_settings(
            {"decisions": {"actions": {**DecisionSettings().actions, "maybe": "rest"}}}, MdtSettings, source
        )
    with pytest.raises(SettingsError, match=r"decisions\.actions\.declined"):
        parse_settings(
            {"decisions": {"actions": {**DecisionSettings().actions, "declined": "forget"}}},
            MdtSettings,
            source,
        )
    with pytest.raises(SettingsError, match="rest_weeks"):
        parse_settings({"decisions": {"rest_weeks": 0}}, MdtSettings, source)
