import json
from datetime import date, timedelta

import openpyxl
import pandas as pd
import pytest
from worklist_fixtures import (
    AS_OF,
    DUDLEY,
    PERCENTILE_BANDS,
    WALSALL,
    context_of,
    contributions_for,
    on_engine,
    social_care_frames,
    status_of,
)

from riskstrat.ingest.sources.settings import SocialCareSettings
from riskstrat.pipelines.weekly import (
    WeeklyInputs,
    listed_context_reader,
    run_worklists,
    social_care_returns_at,
)
from riskstrat.worklists import export
from riskstrat.worklists.export import (
    PRINT_WIDTHS,
    MdtOutput,
    how_list_was_made,
    read_list_csv,
    risk_band_definitions,
)
from riskstrat.worklists.history import LEFT_DIED
from riskstrat.worklists.rows import reason_columns
from riskstrat.worklists.settings import ExclusionSettings, Mdt, RiskBandSettings

WEEK = date(2026, 1, 5)
NORTH, SOUTH = "north-virtual-ward", "south-hiu-service"
HEADINGS = [
    "Rank",
    "Person ID",
    "Practice",
    "Risk (%)",
    "Risk band",
    *reason_columns(3),
    "Age band",
    "Sex",
    "Frailty",
    "Long-term conditions",
    "Main long-term conditions",
    "Care home",
    "Last emergency admission",
    "Last A&E attendance",
    "A&E attendances (12 months)",
    "Community services (90 days)",
    "On caseload",
    "Change since last week",
    "Weeks on list",
    "Last MDT decision",
]
"""The rows' columns, as the CSV holds them."""
SHEET_HEADINGS = [
    *(h for h in PRINT_WIDTHS if h in HEADINGS),
    "MDT decision",
    *(h for h in HEADINGS if h not in PRINT_WIDTHS),
]
"""The Worklist sheet's columns: the printed ones first, the MDT's decision last of them."""


@pytest.fixture()
def inputs(tmp_path, features, scored, boosters, mdt_settings):
    top = scored.nlargest(3, "p_emergency_admission")["person_id"]
    tables = {
        "apc_spells": pd.DataFrame(
            {
                "person_id": top,
                "admission_date": ["2025-11-02", "2025-10-01", "2026-01-03"],
                "admission_method": ["21", "21", "21"],
            }
        ),
        "ae_attendances": pd.DataFrame({"person_id": top, "arrival_datetime": ["2025-12-20 10:00"] * 3}),
        "community_contacts": pd.DataFrame(
            {
                "person_id": [top_north(scored)] * 5,
                "contact_date": ["2025-12-01", "2025-12-08", "2025-12-15", "2025-12-22", "2025-11-30"],
                "service": ["virtual_ward"] * 4 + ["therapy"],
            }
        ),
    }
    return WeeklyInputs(
        week=WEEK,
        data_date=AS_OF,
        scored=scored,
        features=features,
        contributions=contributions_for(boosters),
        settings=mdt_settings,
        output_dir=tmp_path / "outputs",
        model_versions={"emergency_admission": "riskstrat-ea v3", "frequent_attendance": "riskstrat-fa v1"},
        extract_snapshot_hash="abc123",
        listed_context=context_of(tables),
    )


def top_north(scored):
    """The North MDT's first person (highest emergency admission risk at P00001-2)."""
    north = scored.loc[scored["practice_code"].isin(["P00001", "P00002"])]
    return north.nlargest(1, "p_emergency_admission")["person_id"].iloc[0]


def texts(sheet):
    return " ".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None)


def folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_xlsx_has_title_headings_and_values(inputs, scored):
    folder = run_worklists(inputs)
    book = openpyxl.load_workbook(folder / f"{NORTH}.xlsx")
    assert book.sheetnames[:3] == ["Worklist", "About this list", "Left the list"]
    sheet = book["Worklist"]
    assert sheet["A1"].value == "North virtual ward: worklist for the week of 05 January 2026"
    assert "20 people" in sheet["A2"].value
    # Plain words, no developer strings (registry names, extract hashes).
    assert sheet["A3"].value == "Model version 3; data to 31 December 2025"
    assert "abc123" not in texts(sheet) and "riskstrat-ea" not in texts(sheet)
    # Deaths and admissions after the data date are unknown to the list: said on the list itself.
    assert "Records up to 31 December 2025 only: check the person's record" in sheet["A4"].value
    assert [c.value for c in sheet[5]] == SHEET_HEADINGS
    assert sheet.freeze_panes == "C6"  # headings, Rank and Person ID stay in view
    assert sheet.auto_filter.ref.startswith("A5:")
    north = scored.loc[scored["practice_code"].isin(["P00001", "P00002"])]
    top = north.nlargest(1, "p_emergency_admission").iloc[0]
    first = {h: c.value for h, c in zip(SHEET_HEADINGS, sheet[6], strict=True)}
    assert first["Rank"] == 1 and first["Person ID"] == top["person_id"]
    assert first["Risk (%)"] == round(top["p_emergency_admission"] * 100, 1)
    assert sheet.cell(row=6, column=4).number_format == "0.0"
    assert first["Reason 1"]  # a plain-English reason
    assert first["Change since last week"] == "new" and first["Weeks on list"] == 1
    assert sheet.max_row == 5 + 20
    about = texts(book["About this list"])
    assert "supports clinical judgement and does not replace it" in about
    assert "Weeks on list" in about and "MDT decision" in about
    assert "TreeSHAP" not in about
    csv = read_list_csv(folder / f"{NORTH}.csv", dtype={"Person ID": str})
    assert list(csv.columns) == HEADINGS
    assert csv["Person ID"].tolist() == [sheet.cell(row=r, column=2).value for r in range(6, 26)]


def test_context_dates_and_manifest(inputs, scored):
    folder = run_worklists(inputs)
    rows = pd.concat(read_list_csv(folder / f"{m}.csv", dtype=str) for m in (NORTH,))
    top = scored.nlargest(3, "p_emergency_admission")["person_id"].tolist()
    dated = rows.set_index("Person ID").reindex(top)
    # the admission on 2026-01-03 is after the data date and ignored
    assert {"2025-11-02", "2025-10-01"} & set(dated["Last emergency admission"].dropna())
    assert set(dated["Last A&E attendance"].dropna()) <= {"2025-12-20"}
    # Virtual ward and therapy are not in the feature matrix: they come from the extract.
    community = rows.set_index("Person ID")["Community services (90 days)"]
    assert community[top_north(scored)] == "Therapy (1), Virtual ward (4)"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["mdts"]["North virtual ward"]["listed"] == 20
    assert manifest["mdts"]["South HIU service"]["listed"] == 15
    lists = {f"{m}.{x}" for m in (NORTH, SOUTH) for x in ("csv", "xlsx")}
    # The history and the cut-off record are published with the week.
    assert set(manifest["files"]) == lists | {"history.parquet", "assignment.parquet"}
    assert manifest["extract_snapshot_hash"] == "abc123"
    assert manifest["settings_hash"] == inputs.settings.fingerprint()
    assert manifest["model_versions"]["emergency_admission"] == "riskstrat-ea v3"
    assert not set(scored["person_id"]) & set(json.dumps(manifest).split('"'))


def test_no_file_holds_another_mdts_people_nor_excluded_people(inputs, scored):
    scored = scored.copy()
    top = scored.sort_values("p_frequent_attendance", ascending=False)
    excluded = top.loc[top["practice_code"] == "P00003", "person_id"].head(3).tolist()
    top_north = scored.loc[scored["practice_code"] != "P00003"].nlargest(1, "p_emergency_admission")[
        "person_id"
    ]
    excluded += top_north.tolist()
    for column, person in zip(
        ["deceased", "deregistered", "type1_opt_out", "deceased"], excluded, strict=True
    ):
        scored.loc[scored["person_id"] == person, column] = True
    inputs.scored = scored
    folder = run_worklists(inputs)
    practice = scored.set_index("person_id")["practice_code"]
    north = read_list_csv(folder / f"{NORTH}.csv", dtype=str)
    south = read_list_csv(folder / f"{SOUTH}.csv", dtype=str)
    assert set(north["Person ID"].map(practice)) <= {"P00001", "P00002"}
    assert set(south["Person ID"].map(practice)) == {"P00003"}
    assert not set(north["Person ID"]) & set(south["Person ID"])
    for path in folder.glob("*.*"):
        data = path.read_bytes() if path.suffix != ".xlsx" else b""
        assert not any(p.encode() in data for p in excluded)
    for sheet in ("Worklist", "Left the list"):
        values = {
            c.value
            for row in openpyxl.load_workbook(folder / f"{SOUTH}.xlsx")[sheet].iter_rows()
            for c in row
        }
        assert not values & set(excluded)


def test_same_week_twice_gives_identical_bytes(inputs):
    first = folder_bytes(run_worklists(inputs))
    second = folder_bytes(run_worklists(inputs))
    assert first[f"{NORTH}.csv"] == second[f"{NORTH}.csv"]
    assert first == second  # XLSX and manifest too


def test_failed_export_leaves_previous_outputs(inputs, monkeypatch):
    folder = run_worklists(inputs)
    before = folder_bytes(folder)  # the week's history.parquet included
    assert "history.parquet" in before
    inputs.scored = inputs.scored.assign(p_emergency_admission=inputs.scored["p_emergency_admission"] * 0.5)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export, "write_xlsx", broken)
    with pytest.raises(OSError, match="disk full"):
        run_worklists(inputs)
    assert folder_bytes(folder) == before
    assert sorted(p.name for p in (inputs.output_dir / "worklists").iterdir()) == [WEEK.isoformat()]


def test_nhs_number_only_in_xlsx_and_csv(inputs, scored, tmp_path):
    key = pd.DataFrame(
        {"person_id": scored["person_id"], "nhs_number": [f"94{i:08d}" for i in range(len(scored))]}
    )
    key.to_csv(tmp_path / "key.csv", index=False)
    inputs.settings = inputs.settings.model_copy(update={"reidentification_key": tmp_path / "key.csv"})
    folder = run_worklists(inputs)
    north = read_list_csv(folder / f"{NORTH}.csv", dtype=str)
    assert list(north.columns[:3]) == ["Rank", "Person ID", "NHS number"]
    expected = key.set_index("person_id")["nhs_number"].reindex(north["Person ID"])
    assert north["NHS number"].str.replace(" ", "").tolist() == expected.tolist()
    assert north["NHS number"].str.match(r"^\d{3} \d{3} \d{4}$").all()
    sheet = openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["Worklist"]
    assert sheet.cell(row=5, column=3).value == "NHS number"
    assert sheet.freeze_panes == "D6"  # the NHS number stays in view too
    assert sheet.print_area.startswith("'Worklist'!$A$1:")  # printed too
    manifest = (folder / "manifest.json").read_text()
    history = pd.read_parquet(folder / "history.parquet")
    numbers = set(north["NHS number"]) | set(north["NHS number"].str.replace(" ", ""))
    assert not any(n in manifest for n in numbers)
    assert "nhs_number" not in history.columns
    assert not numbers & set(history.astype(str).to_numpy().ravel())


def test_second_week_shows_change_and_who_left(inputs, scored):
    run_worklists(inputs)
    north_first = read_list_csv(
        inputs.output_dir / "worklists" / WEEK.isoformat() / f"{NORTH}.csv", dtype=str
    )
    died = north_first["Person ID"].iloc[0]
    patients = scored[["person_id", "practice_code"]].assign(
        registration_end=None,
        date_of_death=lambda f: f["person_id"].eq(died).map({True: "2026-01-08", False: None}),
    )
    week2 = WEEK + timedelta(7)
    inputs.week = week2
    inputs.status = status_of(patients, None, None, date(2026, 1, 11))
    inputs.scored = scored.loc[scored["person_id"] != died].drop(
        columns=["deceased", "deregistered", "on_caseload", "caseload_team", "type1_opt_out"]
    )
    folder = run_worklists(inputs)
    north = read_list_csv(folder / f"{NORTH}.csv", dtype=str)
    assert died not in set(north["Person ID"])
    assert set(north["Change since last week"]) <= {"same", "new"}
    assert (north["Change since last week"] == "new").sum() == 1
    assert north.loc[north["Change since last week"] == "same", "Weeks on list"].eq("2").all()
    left = openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["Left the list"]
    assert [c.value for c in left[4]] == [
        "Person ID",
        "Practice",
        "Rank last week",
        "Risk last week (%)",
        "Risk this week (%)",
        "Why they left",
    ]
    died_row = {c.value: cell.value for c, cell in zip(left[4], left[5], strict=True)}
    assert died_row["Person ID"] == died and died_row["Why they left"] == LEFT_DIED
    assert died_row["Practice"] == scored.set_index("person_id").at[died, "practice_code"]
    assert died_row["Risk this week (%)"] is None  # not scored after death
    assert "compared with the list for the week of 2026-01-05" in left["A2"].value
    # the earlier week's folder is untouched by the later run
    assert (inputs.output_dir / "worklists" / WEEK.isoformat() / "manifest.json").exists()


def test_first_week_says_there_is_no_earlier_list(inputs):
    folder = run_worklists(inputs)
    left = openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["Left the list"]
    assert "No earlier list for this MDT: this is its first week." in left["A2"].value


def test_leavers_show_this_weeks_risk_when_scored(inputs, scored):
    run_worklists(inputs)
    inputs.week = WEEK + timedelta(7)
    # Halve the first person's risk: they fall off the list but are still scored.
    first = top_north(scored)
    lower = scored["person_id"].eq(first)
    inputs.scored = scored.assign(p_emergency_admission=scored["p_emergency_admission"].where(~lower, 0.001))
    left = openpyxl.load_workbook(run_worklists(inputs) / f"{NORTH}.xlsx")["Left the list"]
    row = {c.value: cell.value for c, cell in zip(left[4], left[5], strict=True)}
    assert row["Person ID"] == first and row["Risk this week (%)"] == 0.1
    assert row["Practice"] == scored.set_index("person_id").at[first, "practice_code"]


def test_about_sheet_says_how_the_list_was_made(inputs):
    folder = run_worklists(inputs)
    about = texts(openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["About this list"])
    north = json.loads((folder / "manifest.json").read_text())["mdts"]["North virtual ward"]
    assert "The top 20 by predicted risk of an emergency hospital admission" in about
    assert "18 years at the data date (no one younger is in the scored population)" in about
    # The cohort already leaves out people who had died or left: no misleading "(0 people)" line.
    assert "Always left off" not in about
    assert "Why people are on 'Left the list'" in about
    assert "other people's rose above it and filled the list" in about
    assert "type 1 opt-out recorded at their practice are removed before anything else" in about
    assert "Type 1 opt-out recorded" not in about  # no longer a reason to leave: never shown
    assert "Flagged: people already on an active virtual-ward or proactive-care caseload" in about
    assert f"{north['eligible']:,} people after these rules" in about
    assert "events after that date are not known to it" in about
    assert "check the person's record before contacting them" in about
    # the risk bands' own definitions, not a pointer to a config file
    assert "Very high Risk in the top 0.5% of everyone scored across the ICS" in about
    assert "configs/" not in about and ".yaml" not in about
    assert about.count("supports clinical judgement and does not replace it") == 1


def test_every_sheet_prints_a4_landscape_with_headings_and_marking(inputs):
    folder = run_worklists(inputs)
    book = openpyxl.load_workbook(folder / f"{NORTH}.xlsx")
    for sheet in (book[name] for name in ("Worklist", "About this list", "Left the list")):
        assert sheet.page_setup.orientation == "landscape"
        assert int(sheet.page_setup.paperSize) == int(sheet.PAPERSIZE_A4)
        # One page wide, as many down as needed: no person's row split across pages.
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
        assert sheet.oddHeader.left.text == "North virtual ward"
        assert sheet.oddHeader.center.text == "OFFICIAL-SENSITIVE: personal data"  # alone in the centre
        assert sheet.oddHeader.right.text == "Week of 05 January 2026"
        assert sheet.oddFooter.left.text == "Records up to 31 December 2025"
        assert sheet.oddFooter.center.text == "Check the person's record before contacting them"
        assert sheet.oddFooter.right.text == "Page &P of &N"
    assert book["Worklist"].print_title_rows == "$5:$5"
    assert book["Left the list"].print_title_rows == "$4:$4"
    about = book["About this list"]
    title_row = int(about.print_title_rows.split(":")[0].strip("$"))
    assert [c.value for c in about[title_row]][:2] == ["Column", "What it means"]


def test_risk_band_definitions_follow_the_settings():
    assert risk_band_definitions(RiskBandSettings.model_validate(PERCENTILE_BANDS)) == [
        ("Very high", "Risk in the top 0.5% of everyone scored across the ICS (percentile 99.5 or above)."),
        (
            "High",
            "Risk in the top 2% of everyone scored across the ICS but not the top 0.5% "
            "(percentile 98 to below 99.5).",
        ),
        (
            "Moderate",
            "Risk in the top 5% of everyone scored across the ICS but not the top 2% "
            "(percentile 95 to below 98).",
        ),
        ("Lower", "Risk below the top 5% (below percentile 95)."),
    ]
    by_probability = RiskBandSettings(
        basis="probability",
        bands=({"name": "Urgent", "min": 0.5}, {"name": "Watch", "min": 0.3}),
        otherwise="Rest",
    )
    assert risk_band_definitions(by_probability) == [
        ("Urgent", "Predicted risk 50% or more."),
        ("Watch", "Predicted risk 30% to below 50%."),
        ("Rest", "Predicted risk below 30%."),
    ]


def test_how_the_list_was_made_follows_the_mdts_own_rules():
    mdt = Mdt(
        name="Central HIU",
        practices=("A81001", "A81002"),
        outcome="frequent_attendance",
        min_age=65,
        capacity_people=None,
        capacity_share=0.005,
        exclusions=ExclusionSettings(active_caseload="exclude", type1_opt_out="include"),
    )
    counts = {
        "registered": 1200,
        "eligible": 3,
        "capacity": 6,
        "excluded_below_age_floor": 900,
        "excluded_active_caseload": 1,
    }
    rows = pd.DataFrame({"Rank": [1, 2, 3]})
    made = dict(how_list_was_made(MdtOutput(mdt, rows, pd.DataFrame(), counts)))
    assert made["Registered"].startswith("1,200 people") and "(A81001, A81002)" in made["Registered"]
    assert made["Minimum age"] == "65 years at the data date; younger people are left off (900 people)."
    assert "Always left off" not in made
    counts["excluded_deceased"] = 2
    made = dict(how_list_was_made(MdtOutput(mdt, rows, pd.DataFrame(), counts)))
    assert made["Always left off"].startswith("People who had died (2 people)")
    assert made["Type 1 opt-out"].startswith("Included")
    assert made["Active caseload"].endswith("are left off (1 person).")
    assert made["Listed"] == (
        "The top 6 by predicted risk of frequent A&E attendance (5 or more) in the next 12 months "
        "(this MDT's weekly capacity: 0.5% of the people registered, rounded up). "
        "Only 3 people were eligible, so the list is shorter."
    )


def test_social_care_column_and_where_it_came_from(inputs, scored):
    # The North list's first person lives in Walsall with A's care; everyone else as D (no record).
    first = top_north(scored)
    frames = social_care_frames()
    events = frames["social_care_events"]
    frames["social_care_events"] = events.assign(person_id=events["person_id"].replace({"A": first}))
    homes = frames["patients"].set_index("person_id")["lsoa_code"]
    frames["patients"] = pd.DataFrame(
        {"person_id": scored["person_id"], "practice_code": scored["practice_code"], "lsoa_code": homes["A"]}
    )
    tables = on_engine(frames)
    settings = SocialCareSettings(local_authorities=(WALSALL, DUDLEY))
    inputs.social_care = social_care_returns_at(tables, AS_OF, settings)
    inputs.listed_context = listed_context_reader(tables, AS_OF, inputs.social_care)
    folder = run_worklists(inputs)
    csv = read_list_csv(folder / f"{NORTH}.csv", dtype={"Person ID": str}, keep_default_na=False)
    after = HEADINGS.index("Community services (90 days)") + 1
    assert list(csv.columns) == [*HEADINGS[:after], "Social care", *HEADINGS[after:]]
    care = csv.set_index("Person ID")["Social care"]
    assert care[first] == "Long-term home care since Mar 2025; reablement ended 1 Dec"
    assert (care.drop(first) == "").all()  # no record
    book = openpyxl.load_workbook(folder / f"{NORTH}.xlsx")
    headings = [c.value for c in book["Worklist"][5]]
    assert headings.index("Social care") < headings.index("MDT decision")  # printed
    about = texts(book["About this list"])
    assert "Social care data" in about and "Adult Social Care Client Level Data (CLD)" in about
    assert "at the data date (31 December 2025) the latest quarter due is Jul-Sep 2025" in about
    assert (
        "Walsall (E08000030) Latest quarter received: Oct-Dec 2025. Every quarter due has been received."
        in about
    )
    assert "Dudley (E08000027) Latest quarter received: Oct-Dec 2025. Not received: Apr-Jun 2025." in about


def test_without_social_care_data_the_list_says_it_is_not_supplied(inputs):
    folder = run_worklists(inputs)
    csv = read_list_csv(folder / f"{NORTH}.csv")
    assert "Social care" not in csv.columns
    about = texts(openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["About this list"])
    assert "Not supplied This ICS supplies no social care data" in about
