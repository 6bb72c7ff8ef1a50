"""Raw files adapted in batches give the whole file's tables, coverage and notes."""

from __future__ import annotations

import pandas as pd
import pytest
from test_csds import ROWS as CSDS_ROWS
from test_registrations import ROWS as REGISTRATION_ROWS

from riskstrat.errors import ContractError
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import (
    TOP_UNMAPPED,
    WHOLE,
    UnmappedCode,
    field_coverage,
    map_codes,
    merge_coverage,
)
from riskstrat.ingest.sources.extract import adapt_extract, adapt_file
from riskstrat.ingest.sources.settings import SourceSettings
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.pipelines.generate import write_synthetic

PEOPLE = 600
BATCH_ROWS = 120
"""Fewer raw rows than the smallest batched file holds (CLD: about 170 rows at 600 people)."""


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="last").reset_index(drop=True)


def _adapt(source_name: str, rows: pd.DataFrame, folder, batch_rows: int | None, suffix: str = ".parquet"):
    """Adapt hand-made raw rows written as a file, in batches of ``batch_rows``."""
    source = SOURCES[source_name]
    path = folder / f"{source.file}{suffix}"
    if suffix == ".csv":
        rows.to_csv(path, index=False)
    else:
        rows.to_parquet(path, index=False)
    tables: dict[str, list[pd.DataFrame]] = {}
    output, read = adapt_file(source, path, {}, batch_rows, lambda t, d: tables.setdefault(t, []).append(d))
    joined = {t: pd.concat(frames, ignore_index=True) for t, frames in tables.items()}
    return joined, output, read


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("batching")
    return write_synthetic(out, PEOPLE, 11, SyntheticSettings(), national=SourceSettings()).raw_dir


def test_every_source_batched_gives_the_whole_files_tables_coverage_and_notes(raw_dir):
    whole = adapt_extract(raw_dir, SourceSettings(batch_rows=None))
    batched = adapt_extract(raw_dir, SourceSettings(batch_rows=BATCH_ROWS))
    rows = {
        s.name: len(pd.read_parquet(raw_dir / f"{s.file}.parquet"))
        for s in SOURCES.values()
        if s.batching != WHOLE
    }
    # Each batched source comes in several batches.
    assert len(rows) >= 8 and all(n > BATCH_ROWS for n in rows.values()), rows
    assert batched.row_counts == whole.row_counts
    assert set(batched.tables) == set(whole.tables)
    for name, frame in whole.tables.items():
        pd.testing.assert_frame_equal(_sorted(batched.tables[name]), _sorted(frame), obj=name)
    assert batched.coverage == whole.coverage  # rows, mapped, top unmapped codes and wrong-system rows
    assert batched.notes == whole.notes
    assert any(c.unmapped for c in whole.coverage)  # the comparison covers re-ranked unmapped codes


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_persons_registrations_in_different_batches_still_keep_the_latest(tmp_path, suffix):
    # P1's two registrations are first and last: with batches of 2 rows they are read apart,
    # and the person partitions bring them together again.
    rows = [REGISTRATION_ROWS[-1], *REGISTRATION_ROWS[1:-1], REGISTRATION_ROWS[0]]
    frame = pd.DataFrame(rows, columns=SOURCES["gp_registrations"].field_names)
    whole, whole_out, _ = _adapt("gp_registrations", frame, tmp_path, None, suffix)
    batched, batched_out, read = _adapt("gp_registrations", frame, tmp_path, 2, suffix)
    assert read == len(rows)
    pd.testing.assert_frame_equal(_sorted(batched["patients"]), _sorted(whole["patients"]))
    assert batched["patients"].set_index("person_id").loc["P1", "practice_code"] == "A81001"
    assert batched_out.notes == whole_out.notes
    assert any("1 earlier GP registrations removed" in n for n in batched_out.notes)
    assert batched_out.coverage == whole_out.coverage


def test_csds_resubmissions_across_batches_of_seven_rows_are_removed_exactly(tmp_path):
    # 3 copies of 40 people's contacts (120 contacts, 360 rows, shuffled): batches of 7 rows
    # never hold a contact's submissions together until partitioned by person.
    people = []
    for n in range(40):
        for row in CSDS_ROWS[:3]:
            people.append((f"P{n}", *row[1:]))
    frame = pd.DataFrame(people, columns=SOURCES["csds"].field_names).sample(frac=1, random_state=3)
    whole, whole_out, _ = _adapt("csds", frame, tmp_path, None)
    batched, batched_out, _ = _adapt("csds", frame, tmp_path, 7)
    assert len(whole["community_contacts"]) == 40
    contacts = batched["community_contacts"]
    pd.testing.assert_frame_equal(_sorted(contacts), _sorted(whole["community_contacts"]))
    expected = {"resubmitted": 80, "not_modelled": 0, "unknown_team": 0, "no_team": 0}
    assert batched_out.counts == whole_out.counts == expected
    assert batched_out.notes == whole_out.notes


def test_problems_in_several_batches_are_counted_over_the_whole_file(tmp_path):
    frame = pd.DataFrame(REGISTRATION_ROWS[:5] * 4, columns=SOURCES["gp_registrations"].field_names)
    frame["NHS_NUMBER_DEID"] = [f"Q{n}" for n in range(len(frame))]
    frame.loc[[0, 9, 17], "REG_DATE"] = "31/12/2020"  # three bad dates, in three batches of 5
    with pytest.raises(ContractError) as whole:
        _adapt("gp_registrations", frame, tmp_path, None)
    with pytest.raises(ContractError) as batched:
        _adapt("gp_registrations", frame.iloc[::1], tmp_path, 5)
    (problem,) = batched.value.problems
    assert problem.n_rows == whole.value.problems[0].n_rows == 3
    assert sorted(problem.examples) == ["Q0", "Q17", "Q9"]


def test_a_code_below_each_batchs_top_ten_can_lead_the_merged_ranking():
    source = SOURCES["gp_events"]
    # Each batch has ten codes more frequent than "Z" (3 rows each, 2 for Z), but each batch's ten
    # are different, so overall Z (4 rows) is the most frequent unmapped code.
    first = pd.Series([f"A{i}" for i in range(10) for _ in range(3)] + ["Z", "Z"], dtype="string")
    second = pd.Series([f"B{i}" for i in range(10) for _ in range(3)] + ["Z", "Z"], dtype="string")
    _, one = map_codes(source, "CODE", first, {}, "none", "snomed")
    _, two = map_codes(source, "CODE", second, {}, "none", "snomed")
    _, whole = map_codes(source, "CODE", pd.concat([first, second], ignore_index=True), {}, "none", "snomed")
    assert "Z" not in [u.code for u in one.unmapped]
    (merged,) = merge_coverage([one], [two])
    assert merged == whole
    assert merged.unmapped[0] == UnmappedCode("Z", 4)
    assert len(merged.unmapped) == TOP_UNMAPPED and merged.rows == 64


def test_personal_looking_codes_are_ranked_as_read_and_shown_by_shape():
    # Two dates of birth with the same shape stay two codes in the ranking, each shown as its shape.
    tally = {"1950-01-02": 3, "1960-03-04": 2, "X1": 1}
    coverage = field_coverage("s", "f", "list", 6, 0, tally, "")
    assert [(u.code, u.rows) for u in coverage.unmapped] == [("9999-99-99", 3), ("9999-99-99", 2), ("X1", 1)]
    assert [u.code for u in coverage.tally] == ["1950-01-02", "1960-03-04", "X1"]
    assert "1950" not in str(coverage.as_dict())


def test_cld_resubmissions_across_batches_of_seven_rows_are_removed_exactly(tmp_path):
    from test_cld import row

    rows = []
    for n in range(30):
        traced = f"T{n}" if n % 3 else None  # a third of people were not traced: the LA's number links them
        for k, (end, imported) in enumerate(
            [
                ("2026-03-31", "2026-04-25 10:00:00"),
                ("2026-06-30", "2026-07-20 09:00:00"),
                ("2026-06-30", "2026-07-25 10:00:00"),
            ]
        ):
            # A traced person's LA-sent number differs between returns: only the traced one joins them.
            la_sent = f"L{n}-{k}" if traced else f"L{n}"
            ids = {"Der_NHS_Number_Traced_Pseudo": traced, "Der_NHS_Number_Pseudo": la_sent}
            rows.append(row(**ids, Reporting_Period_End_Date=end, ImportDate=imported))
        rows.append(row(**ids, Event_Type="Request", Service_Type=None, Service_Component=None))
    no_id = {"Der_NHS_Number_Traced_Pseudo": None, "Der_NHS_Number_Pseudo": None}
    rows += [row(**no_id, Event_Start_Date=f"2025-0{m}-01") for m in range(1, 6)]
    rows += [row(Event_Type="Contact", Der_NHS_Number_Traced_Pseudo=f"T{n}") for n in range(3)]
    fields = SOURCES["cld"].field_names
    frame = pd.DataFrame([{f: r.get(f) for f in fields} for r in rows]).sample(frac=1, random_state=3)
    whole, whole_out, _ = _adapt("cld", frame.astype("string"), tmp_path, None)
    batched, batched_out, read = _adapt("cld", frame.astype("string"), tmp_path, 7)
    assert read == len(frame) == 128
    events = whole["social_care_events"]
    assert len(events) == 60 and events["person_id"].nunique() == 30
    pd.testing.assert_frame_equal(_sorted(batched["social_care_events"]), _sorted(events))
    # The returns received: one row per return, each batch's rows of it summed.
    returns = whole["social_care_returns"]
    assert len(returns) == 2 and returns["rows"].sum() == 120
    pd.testing.assert_frame_equal(_sorted(batched["social_care_returns"]), _sorted(returns))
    assert batched_out.coverage == whole_out.coverage
    assert batched_out.counts == whole_out.counts
    assert whole_out.counts["no_person"] == 5 and whole_out.counts["resubmitted"] == 60
    assert batched_out.notes == whole_out.notes
    assert any(n.startswith("5 CLD rows without a pseudonymised NHS number") for n in batched_out.notes)
