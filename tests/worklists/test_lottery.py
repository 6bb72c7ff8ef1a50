"""The optional lottery for the last places of each list (issue 22): seeded, recorded, never shown."""

import hashlib
import json
from datetime import date, timedelta

import numpy as np
import openpyxl
import pandas as pd
import pytest
from worklist_fixtures import AS_OF, PRACTICES, contributions_for

from riskstrat.errors import RiskstratError, SettingsError
from riskstrat.pipelines.weekly import WeeklyInputs, run_worklists
from riskstrat.settings import load_settings
from riskstrat.worklists.assignment import WEEK_ASSIGNMENT, read_assignments
from riskstrat.worklists.export import read_list_csv
from riskstrat.worklists.history import LEAVER_REASONS, LEFT_BELOW_CAPACITY, leavers, person_lookup
from riskstrat.worklists.selection import (
    draw_lottery,
    lottery_seed,
    select_mdt,
    select_worklists,
    tie_break_key,
    with_risk_percentiles,
)
from riskstrat.worklists.settings import LotterySettings, MdtSettings, resolve_mdts

WEEK = date(2026, 1, 5)
NORTH = "North virtual ward"
LOTTERY = LotterySettings(enabled=True, places=5, pool=10, seed=7)


def north(settings: MdtSettings):
    return resolve_mdts(settings, PRACTICES)[0]


def select(scored, settings, week=WEEK, lottery=LOTTERY, **kwargs):
    prepared = with_risk_percentiles(scored, {"emergency_admission", "frequent_attendance"})
    return select_mdt(prepared, north(settings), settings.risk_bands, week=week, lottery=lottery, **kwargs)


def by_risk(scored, practices):
    """Eligible people of these practices in the list's order: risk, then the tie-break hash, then ID."""
    own = scored.loc[scored["practice_code"].isin(practices)].copy()
    own["_tie"] = tie_break_key(own["person_id"])
    own = own.sort_values(["p_emergency_admission", "_tie", "person_id"], ascending=[False, True, True])
    return own["person_id"].astype(str).tolist()


def test_the_seed_is_sha256_of_setting_week_and_mdt():
    assert lottery_seed(7, WEEK, NORTH) == hashlib.sha256(f"7|2026-01-05|{NORTH}".encode()).hexdigest()
    assert lottery_seed(7, WEEK, NORTH) != lottery_seed(7, WEEK, "South")
    assert lottery_seed(7, WEEK, NORTH) != lottery_seed(8, WEEK, NORTH)


def test_the_draw_takes_places_winners_and_is_checkable_from_the_seed():
    pool = pd.Series([f"P{i}" for i in range(10)])
    won = draw_lottery(pool, 5, "abc")
    assert won.sum() == 5
    keys = {pid: hashlib.sha256(f"abc|{pid}".encode()).hexdigest() for pid in pool}
    assert set(pool[won]) == set(sorted(keys, key=keys.get)[:5])  # anyone with the seed can check it
    assert np.array_equal(
        won, draw_lottery(pool.iloc[::-1], 5, "abc")[::-1]
    )  # order of the pool is irrelevant
    assert draw_lottery(pool.iloc[:3], 5, "abc").all()  # a pool no larger than places: all drawn


def test_same_week_and_mdt_draw_the_same_people_another_week_differs(scored, mdt_settings):
    first = select(scored, mdt_settings)
    again = select(scored, mdt_settings)
    later = select(scored, mdt_settings, week=WEEK + timedelta(7))
    pd.testing.assert_frame_equal(first.listed, again.listed)
    pd.testing.assert_frame_equal(first.near_cutoff, again.near_cutoff)
    assert first.lottery_seed == lottery_seed(7, WEEK, NORTH)
    winners = set(first.near_cutoff.loc[first.near_cutoff["lottery_won"], "person_id"])
    assert len(winners) == 5
    assert winners != set(later.near_cutoff.loc[later.near_cutoff["lottery_won"], "person_id"])


def test_the_top_are_listed_and_the_last_places_are_drawn_from_the_pool(scored, mdt_settings):
    selection = select(scored, mdt_settings)
    order = by_risk(scored, ["P00001", "P00002"])
    near = selection.near_cutoff.set_index("person_id")
    listed = selection.listed["person_id"].astype(str).tolist()
    assert selection.capacity == 20 and len(listed) == 20
    assert listed[:15] == order[:15]  # ranks 1..capacity-places as always
    pool = order[15:25]  # ranks 16..25
    assert near.index[near["lottery_pool"]].tolist() == pool
    assert set(listed[15:]) == set(near.index[near["lottery_won"]]) <= set(pool)
    # The list shows its people in risk order, ranked 1..capacity: nothing says who was drawn.
    assert selection.listed["rank"].tolist() == list(range(1, 21))
    assert selection.listed["probability"].is_monotonic_decreasing
    assert listed == [p for p in order if p in set(listed)]
    assert not selection.lottery_losers & set(listed)
    assert len(selection.lottery_losers) == 5
    assert not {"lottery_pool", "lottery_won", "eligible_rank", "_tie"} & set(selection.listed.columns)
    assert selection.lottery_counts() == {"lottery_pool": 10, "lottery_drawn": 5}


def test_with_the_lottery_off_the_list_is_the_top_capacity_by_risk(scored, mdt_settings):
    order = by_risk(scored, ["P00001", "P00002"])
    off = select(scored, mdt_settings, lottery=LotterySettings())
    without = select(scored, mdt_settings, lottery=None)
    assert off.listed["person_id"].astype(str).tolist() == order[:20]
    pd.testing.assert_frame_equal(off.listed, without.listed)
    assert off.lottery_seed == "" and off.lottery_counts() == {}
    assert not off.near_cutoff["lottery_pool"].any() and not off.lottery_losers
    # The audit's back-test and any caller that does not ask for the lottery get the same list.
    prepared = with_risk_percentiles(scored, {"emergency_admission", "frequent_attendance"})
    plain = select_mdt(prepared, north(mdt_settings), mdt_settings.risk_bands)
    pd.testing.assert_frame_equal(plain.listed, off.listed)


def test_the_pool_shrinks_with_few_eligible_and_there_is_no_draw_below_capacity(scored, mdt_settings):
    few = scored.loc[scored["practice_code"].isin(["P00001", "P00002"])]
    order = by_risk(scored, ["P00001", "P00002"])
    keep = few["person_id"].isin(order[:22])
    shrunk = select(few.loc[keep], mdt_settings)  # 22 eligible: pool ranks 16..22
    assert shrunk.near_cutoff["lottery_pool"].sum() == 7
    assert shrunk.near_cutoff["lottery_won"].sum() == 5
    assert len(shrunk.listed) == 20
    short = select(few.loc[few["person_id"].isin(order[:12])], mdt_settings)  # 12 eligible < capacity 20
    assert short.lottery_seed == "" and not short.near_cutoff["lottery_pool"].any()
    assert short.listed["person_id"].astype(str).tolist() == order[:12]
    assert np.isnan(short.cutoff_probability)


def test_select_worklists_draws_for_every_mdt_with_its_own_seed(scored, mdt_settings):
    mdts = resolve_mdts(mdt_settings, PRACTICES)
    chosen = select_worklists(scored, mdts, mdt_settings.risk_bands, week=WEEK, lottery=LOTTERY)
    assert {s.lottery_seed for s in chosen.values()} == {lottery_seed(7, WEEK, m.name) for m in mdts}
    with pytest.raises(RiskstratError, match="no week was given"):
        select_worklists(scored, mdts, mdt_settings.risk_bands, lottery=LOTTERY)


def write(tmp_path, text):
    path = tmp_path / "mdts.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lottery:\n  enabled: true\n  places: 5\n  pool: 5\n", "pool (5) must be larger than places (5)"),
        ("lottery:\n  places: 0\n", "lottery.places"),
        ("cutoff_record:\n  people_below: -1\n", "cutoff_record.people_below"),
        ("lottery:\n  enabled: true\n  places: 60\n  pool: 70\n", "default_mdt.capacity_people (50)"),
        (
            "lottery: {enabled: true, places: 5, pool: 10}\n"
            "mdts:\n  - name: Tiny ward\n    practices: [A81001]\n    capacity_people: 3\n",
            "MDT 'Tiny ward' has capacity 3",
        ),
    ],
)
def test_invalid_lottery_settings_fail_with_a_clear_message(tmp_path, text, message):
    with pytest.raises(SettingsError) as error:
        load_settings(write(tmp_path, text), MdtSettings)
    assert message in str(error.value)


def test_a_capacity_share_below_the_places_names_the_mdt(scored, mdt_settings):
    tiny = mdt_settings.model_copy(
        update={
            "default_mdt": mdt_settings.default_mdt.model_copy(
                update={"capacity_people": None, "capacity_share": 0.001}
            )
        }
    )
    prepared = with_risk_percentiles(scored, {"emergency_admission", "frequent_attendance"})
    with pytest.raises(RiskstratError, match="MDT 'North virtual ward': its capacity this week is 1"):
        select_mdt(prepared, north(tiny), tiny.risk_bands, week=WEEK, lottery=LOTTERY)


def test_a_loser_on_last_weeks_list_is_not_among_the_leavers():
    from riskstrat.worklists.settings import ExclusionSettings, Mdt

    mdt = Mdt(NORTH, ("P1",), "emergency_admission", 18, 2, None, ExclusionSettings())
    history = pd.DataFrame(
        {
            "week": [WEEK - timedelta(7)] * 2,
            "mdt": [NORTH] * 2,
            "person_id": ["A", "B"],
            "practice_code": ["P1"] * 2,
            "rank": [1, 2],
            "probability": [0.5, 0.4],
            "risk_band": ["Moderate"] * 2,
        }
    )
    scored = pd.DataFrame(
        {
            "person_id": ["A", "B", "C"],
            "practice_code": ["P1"] * 3,
            "age": [70] * 3,
            "p_emergency_admission": [0.5, 0.4, 0.45],
        }
    )
    now = scored.iloc[[0, 2]].assign(rank=[1, 2], probability=[0.5, 0.45])  # C was drawn, B was not
    people = person_lookup(scored)
    left = leavers(mdt, history, now, people, not_drawn={"B", "C"})
    assert left.empty  # B lost the draw: left out like a type 1 opt-out, no ID, risk or reason
    assert list(left.columns) == list(leavers(mdt, history, now, people).columns)
    assert leavers(mdt, history, now, people)["reason"].tolist() == [LEFT_BELOW_CAPACITY]
    assert not any("drawn" in reason.lower() for reason in LEAVER_REASONS)


# ----------------------------------------------------------------------------- the published week


@pytest.fixture()
def lottery_inputs(tmp_path, features, scored, boosters, mdt_settings):
    return WeeklyInputs(
        week=WEEK,
        data_date=AS_OF,
        scored=scored,
        features=features,
        contributions=contributions_for(boosters),
        settings=mdt_settings.model_copy(update={"lottery": LOTTERY}),
        output_dir=tmp_path / "outputs",
    )


def workbook_text(path):
    book = openpyxl.load_workbook(path)
    return {
        str(cell.value)
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.value
    }


def test_losers_are_recorded_but_never_on_any_list_csv_or_history(lottery_inputs):
    folder = run_worklists(lottery_inputs)
    record = read_assignments(folder.parent)
    pool = record.loc[record["lottery_pool"]]
    assert set(pool["mdt"]) == {NORTH, "South HIU service"}
    assert (pool.groupby("mdt")["lottery_won"].sum() == 5).all()
    assert (pool["lottery_seed"] == pool["mdt"].map(lambda m: lottery_seed(7, WEEK, m))).all()
    assert (record.loc[~record["lottery_pool"], "lottery_seed"] == "").all()
    losers = set(pool.loc[~pool["lottery_won"], "person_id"])
    winners = set(pool.loc[pool["lottery_won"], "person_id"])
    assert len(losers) == 10
    history = pd.read_parquet(folder / "history.parquet")
    assert not losers & set(history["person_id"]) and winners <= set(history["person_id"])
    for slug in ("north-virtual-ward", "south-hiu-service"):
        csv = read_list_csv(folder / f"{slug}.csv", dtype=str)
        assert not losers & set(csv["Person ID"])
        assert len(csv) == {"north-virtual-ward": 20, "south-hiu-service": 15}[slug]
        assert csv["Rank"].astype(int).tolist() == list(range(1, len(csv) + 1))
        assert not losers & workbook_text(folder / f"{slug}.xlsx")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["mdts"][NORTH]["lottery_pool"] == 10
    assert manifest["mdts"][NORTH]["lottery_drawn"] == 5
    assert manifest["mdts"][NORTH]["lottery_seed"] == lottery_seed(7, WEEK, NORTH)
    assert WEEK_ASSIGNMENT in manifest["files"]
    about = workbook_text(folder / "north-virtual-ward.xlsx")
    assert any("drawn at random from the 10 people ranked next" in text for text in about)


def test_a_rerun_of_a_week_with_the_lottery_gives_identical_files(lottery_inputs):
    first = {p.name: p.read_bytes() for p in sorted(run_worklists(lottery_inputs).iterdir())}
    second = {p.name: p.read_bytes() for p in sorted(run_worklists(lottery_inputs).iterdir())}
    assert first["north-virtual-ward.csv"] == second["north-virtual-ward.csv"]
    assert first == second  # XLSX, history, assignment and manifest too


def all_cells(path):
    """Every non-empty cell of every sheet of the workbook, as text."""
    book = openpyxl.load_workbook(path)
    assert book.sheetnames  # the workbook has sheets to look at
    return [
        str(cell.value)
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.value
    ]


def test_losers_from_last_weeks_list_appear_nowhere_in_the_xlsx_or_csv(lottery_inputs, mdt_settings):
    lottery_inputs.settings = mdt_settings  # week 1 without the lottery: the top 20 listed
    run_worklists(lottery_inputs)
    lottery_inputs.settings = mdt_settings.model_copy(update={"lottery": LOTTERY})
    lottery_inputs.week = WEEK + timedelta(7)  # same scores, lottery on
    folder = run_worklists(lottery_inputs)
    record = read_assignments(folder.parent)
    now = record.loc[(record["week"] == lottery_inputs.week) & (record["mdt"] == NORTH)]
    lost = now.loc[now["lottery_pool"] & ~now["lottery_won"]]
    was_listed = set(lost.loc[lost["eligible_rank"] <= 20, "person_id"])
    assert was_listed  # the draw took people off last week's top 20: the case under test
    assert was_listed <= set(record.loc[record["week"] == WEEK, "person_id"])  # listed last week, recorded
    last_week = pd.read_parquet(folder.parent / WEEK.isoformat() / "history.parquet")
    assert was_listed <= set(last_week["person_id"])
    # Every cell of every sheet, substrings included (an ID inside a sentence would also be caught).
    cells = all_cells(folder / "north-virtual-ward.xlsx")
    assert not [text for text in cells for person in lost["person_id"] if person in text]
    assert not [text for text in cells if "not drawn for" in text.lower()]
    book = openpyxl.load_workbook(folder / "north-virtual-ward.xlsx")
    left_ids = {row[0] for row in book["Left the list"].iter_rows(min_row=5, values_only=True)}
    assert not was_listed & left_ids
    csv_text = (folder / "north-virtual-ward.csv").read_text()
    assert not [person for person in lost["person_id"] if person in csv_text]
    csv = read_list_csv(folder / "north-virtual-ward.csv", dtype=str)
    assert not set(lost["person_id"]) & set(csv["Person ID"])
    assert not set(lost["person_id"]) & set(pd.read_parquet(folder / "history.parquet")["person_id"])
    about = " ".join(all_cells(folder / "north-virtual-ward.xlsx"))
    assert "people not drawn are not shown" in about
    assert "people who were not drawn are not on this sheet" in about  # the 'Left the list' notes say so
