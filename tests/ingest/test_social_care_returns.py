"""Social care returns: quarters, local authorities, missing LA-quarters, and the gate's warning."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from riskstrat.ingest.contract import OPTIONAL_TABLES, SOCIAL_CARE_EVENTS, SOCIAL_CARE_RETURN_DUE_DAYS
from riskstrat.ingest.social_care import (
    data_cutoff,
    expected_local_authorities,
    expected_quarters,
    known_local_authorities,
    local_authority_of_lsoa,
    quarter_end,
    quarter_label,
    quarter_start,
    return_due,
    social_care_returns,
    unreported_quarters,
)
from riskstrat.ingest.sources.settings import SocialCareSettings
from riskstrat.ingest.validation import social_care_returns_check
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.pipelines.validate import run_validation

WALSALL, DUDLEY = "E08000030", "E08000027"


def test_quarters_follow_the_calendar_and_returns_are_due_60_days_after():
    assert SOCIAL_CARE_RETURN_DUE_DAYS == 60
    assert quarter_start(date(2026, 5, 17)) == date(2026, 4, 1)
    assert quarter_start(date(2026, 12, 31)) == date(2026, 10, 1)
    assert quarter_end(date(2026, 10, 1)) == date(2026, 12, 31)
    assert quarter_label(date(2026, 4, 1)) == "Apr-Jun 2026"
    assert quarter_label(date(2027, 1, 1)) == "Jan-Mar 2027"
    assert return_due(date(2026, 4, 1)) == date(2026, 8, 29)  # 30 Jun + 60 days


def test_expected_quarters_stop_at_the_last_quarter_due():
    # Apr-Jun 2026 is due on 29 Aug 2026: expected from that day, not the day before.
    assert expected_quarters(date(2025, 11, 3), date(2026, 8, 28)) == [
        date(2025, 10, 1),
        date(2026, 1, 1),
    ]
    assert expected_quarters(date(2025, 10, 1), date(2026, 8, 29))[-1] == date(2026, 4, 1)
    assert expected_quarters(date(2026, 7, 1), date(2026, 8, 29)) == []


def _events(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "la_code": [la for la, _ in rows],
            "reporting_period_start": pd.to_datetime([q for _, q in rows]),
        }
    )


def test_returns_coverage_names_a_missing_la_quarter_and_not_one_not_yet_due():
    events = _events(
        [
            (WALSALL, "2025-10-01"),
            (WALSALL, "2026-01-01"),
            (WALSALL, "2026-01-01"),
            (WALSALL, "2026-04-01"),
            (DUDLEY, "2025-10-01"),
            (DUDLEY, "2026-04-01"),  # Dudley's Jan-Mar 2026 return never came
            (WALSALL, "2026-07-01"),  # received early: Jul-Sep 2026 is not due until 29 Nov
        ]
    )
    coverage = social_care_returns(events, [WALSALL, DUDLEY], date(2026, 9, 1))
    assert coverage.missing == [(DUDLEY, date(2026, 1, 1))]
    frame = coverage.frame.set_index(["la_code", "quarter_start"])
    assert frame.loc[(WALSALL, date(2026, 1, 1)), "rows"] == 2
    assert not frame.loc[(DUDLEY, date(2026, 7, 1)), "due"]  # not yet due: listed, never missing
    assert not frame.loc[(DUDLEY, date(2026, 7, 1)), "received"]
    assert coverage.latest == {WALSALL: date(2026, 7, 1), DUDLEY: date(2026, 4, 1)}
    headline = coverage.headline()
    assert "2 local authorities" in headline and "5 of 6 due LA-quarters received" in headline
    assert "Dudley (E08000027): Jan-Mar 2026 (due 30 May 2026)" in headline
    # The same data on the day before Apr-Jun 2026 is due: nothing more is missing.
    assert social_care_returns(events, [WALSALL, DUDLEY], date(2026, 8, 28)).missing == [
        (DUDLEY, date(2026, 1, 1))
    ]


def test_an_expected_la_with_no_rows_misses_every_due_quarter_from_the_first():
    events = _events([(WALSALL, "2026-01-01"), (WALSALL, "2026-04-01")])
    coverage = social_care_returns(events, [WALSALL, DUDLEY], date(2026, 9, 1), first=date(2025, 12, 5))
    assert coverage.missing == [
        (WALSALL, date(2025, 10, 1)),
        (DUDLEY, date(2025, 10, 1)),
        (DUDLEY, date(2026, 1, 1)),
        (DUDLEY, date(2026, 4, 1)),
    ]
    assert coverage.latest[DUDLEY] is None
    assert coverage.to_dict()["missing"][0] == {"la_code": WALSALL, "quarter_start": "2025-10-01"}


def test_lsoas_map_to_their_authority_and_districts_to_counties_only_through_the_setting():
    # E01000001 is in the City of London (E09000001); E01017627 is in a two-tier district (E07).
    codes = local_authority_of_lsoa(["E01000001", "E01017627", "not-an-lsoa"])
    assert codes.iloc[0] == "E09000001"
    district = codes.iloc[1]
    assert district.startswith("E07")
    assert pd.isna(codes.iloc[2])
    mapped = local_authority_of_lsoa(["E01017627"], {district: "E10000023"})
    assert mapped.tolist() == ["E10000023"]


def test_expected_authorities_hold_at_least_one_percent_of_people():
    lsoas = ["E01000001"] * 199 + ["E01017627"]  # the district holds 0.5%
    assert expected_local_authorities(lsoas) == ["E09000001"]
    assert expected_local_authorities(lsoas, min_share=0.005)[1].startswith("E07")


def test_settings_reject_codes_that_are_not_local_authorities():
    with pytest.raises(ValueError, match="not an ONS local authority code: 503"):
        SocialCareSettings(local_authorities=("503",))
    assert SocialCareSettings(county_of_district={"E07000192": "E10000028"}).county_of_district


def test_the_data_cutoff_is_the_end_of_the_latest_quarter_due():
    # Jul-Sep 2025 is due on 29 Nov 2025 (60 days after 30 Sep).
    assert data_cutoff(date(2025, 11, 29)) == date(2025, 9, 30)
    assert data_cutoff(date(2025, 11, 28)) == date(2025, 6, 30)
    assert data_cutoff(date(2025, 12, 31)) == date(2025, 9, 30)
    assert data_cutoff(date(2026, 3, 1)) == date(2025, 12, 31)  # Oct-Dec due 1 Mar
    assert data_cutoff(date(2026, 2, 28)) == date(2025, 9, 30)
    for day in pd.date_range("2024-01-01", "2026-12-31", freq="7D").date:
        cutoff = data_cutoff(day)
        assert cutoff == quarter_end(cutoff) and return_due(quarter_start(cutoff)) <= day
        assert return_due(quarter_start(cutoff + pd.Timedelta(days=1))) > day  # the next is not yet due


def test_known_needs_only_the_latest_return_due_a_rolling_return_covers_older_gaps():
    # Dudley: Apr-Jun 2025 missing, Jul-Sep received (its 12 months cover Apr-Jun). Walsall: Jul-Sep missing.
    events = pd.DataFrame(
        {
            "la_code": [DUDLEY, DUDLEY, WALSALL, WALSALL],
            "reporting_period_start": pd.to_datetime(
                ["2025-01-01", "2025-07-01", "2025-01-01", "2025-04-01"]
            ),
        }
    )
    coverage = social_care_returns(events, [DUDLEY, WALSALL], date(2025, 12, 31))
    assert (DUDLEY, date(2025, 4, 1)) in coverage.missing  # still reported as a missing quarter
    assert known_local_authorities(coverage, date(2025, 12, 31)) == {DUDLEY}
    assert unreported_quarters(coverage, DUDLEY, date(2025, 12, 31)) == []
    assert unreported_quarters(coverage, WALSALL, date(2025, 12, 31)) == [date(2025, 7, 1)]
    # Earlier, Dudley's missing Apr-Jun 2025 is the latest due (from 29 Aug to 28 Nov 2025).
    assert known_local_authorities(coverage, date(2025, 9, 30)) == {WALSALL}
    assert unreported_quarters(coverage, DUDLEY, date(2025, 9, 30)) == [date(2025, 4, 1)]
    # Before the first quarter with returns nothing is known.
    assert known_local_authorities(coverage, date(2024, 12, 31)) == set()


def test_social_care_events_is_optional_with_the_agreed_columns():
    assert OPTIONAL_TABLES == ("social_care_events", "social_care_returns")
    assert SOCIAL_CARE_EVENTS.required_columns == (
        "person_id",
        "la_code",
        "reporting_period_start",
        "event_type",
        "event_start_date",
        "client_type",
    )


# -- the gate --------------------------------------------------------------------------------------


def _social_care(people: list[str], quarters: list[str], la: str) -> pd.DataFrame:
    n = len(people)
    return pd.DataFrame(
        {
            "person_id": people,
            "la_code": [la] * n,
            "reporting_period_start": pd.to_datetime([quarters[i % len(quarters)] for i in range(n)]),
            "event_type": ["service", "request", "assessment", "review"] * (n // 4) + ["service"] * (n % 4),
            "event_start_date": pd.to_datetime(["2025-01-10"] * n),
            "event_end_date": pd.to_datetime([None] * n),
            "client_type": ["service_user"] * n,
            "service_type": ["long_term_community"] * n,
            "service_component": ["home_care"] * n,
            "primary_support_reason": ["physical_personal_care"] * n,
            "accommodation_status": ["own_home"] * n,
        }
    )


def test_gate_warns_naming_la_and_quarter_and_the_run_goes_on(tmp_path):
    from tests.ingest.test_validation import EXTRACT_DATE, valid_tables, write_extract

    tables = valid_tables()
    # The valid extract's people live in the City of London (E09000001); Jan-Mar 2025 is missing
    # and Jul-Sep 2025 (due 29 Nov) is due by the extract date, Oct-Dec 2025 is not.
    tables["social_care_events"] = _social_care(
        list(tables["patients"]["person_id"][1:21]), ["2024-10-01", "2025-04-01", "2025-07-01"], "E09000001"
    )
    extract = write_extract(tmp_path / "extract", tables)
    report = run_validation(extract, tmp_path / "outputs", ValidationSettings(), EXTRACT_DATE)
    assert report.passed, [r.problem().describe() for r in report.critical_failures]
    returns = [r for r in report.results if r.kind == "social_care_returns"]
    assert [(r.severity, r.passed) for r in returns] == [("warning", False)]
    assert "City of London (E09000001): Jan-Mar 2025 (due 30 May 2025)" in returns[0].expected
    assert any("Jan-Mar 2025" in line for line in report.warning_lines())
    assert report.social_care_returns["missing"] == [{"la_code": "E09000001", "quarter_start": "2025-01-01"}]
    page = report.data_docs_index.read_text(encoding="utf-8")
    assert "Social care returns" in page and "Jan-Mar 2025" in page


def test_gate_passes_an_extract_without_social_care_and_with_every_return(tmp_path):
    from tests.ingest.test_validation import EXTRACT_DATE, valid_tables, write_extract

    tables = valid_tables()
    extract = write_extract(tmp_path / "without", tables)
    report = run_validation(extract, tmp_path / "out1", ValidationSettings(), EXTRACT_DATE)
    assert report.passed and report.warnings == []
    absent = [r for r in report.results if r.table == "social_care_events"]
    assert [(r.kind, r.passed) for r in absent] == [("table_present", True)]
    assert report.social_care_returns == {}

    tables["social_care_events"] = _social_care(
        list(tables["patients"]["person_id"][1:13]), ["2025-04-01", "2025-07-01"], "E09000001"
    )
    extract = write_extract(tmp_path / "with", tables)
    settings = SocialCareSettings(local_authorities=("E09000001",), first_quarter=date(2025, 4, 1))
    report = run_validation(
        extract, tmp_path / "out2", ValidationSettings(), EXTRACT_DATE, social_care=settings
    )
    assert report.passed and report.warnings == [], report.warning_lines()
    returns = [r for r in report.results if r.kind == "social_care_returns"]
    assert [r.passed for r in returns] == [True]
    assert "2 of 2 due LA-quarters received" in returns[0].expected


def test_gate_counts_returns_due_by_the_data_date_not_the_day_it_runs(tmp_path):
    from tests.ingest.test_validation import EXTRACT_DATE, valid_tables, write_extract

    tables = valid_tables()
    tables["social_care_events"] = _social_care(
        list(tables["patients"]["person_id"][1:13]), ["2025-04-01", "2025-07-01"], "E09000001"
    )
    extract = write_extract(tmp_path / "extract", tables)
    settings = SocialCareSettings(local_authorities=("E09000001",), first_quarter=date(2025, 4, 1))
    # No extract date (checked on a later day): the run's data date decides which returns are due.
    report = run_validation(
        extract, tmp_path / "out", ValidationSettings(), None, social_care=settings, returns_date=EXTRACT_DATE
    )
    assert report.social_care_returns["data_date"] == EXTRACT_DATE.isoformat()
    assert report.social_care_returns["missing"] == []
    # Without it, today: every quarter since, not yet supplied, would be reported missing.
    report = run_validation(extract, tmp_path / "out2", ValidationSettings(), None, social_care=settings)
    assert report.social_care_returns["data_date"] == date.today().isoformat()
    assert len(report.social_care_returns["missing"]) >= 1


def test_a_returns_check_that_cannot_read_its_columns_fails_naming_the_cause(tmp_path):
    extract = tmp_path / "extract"
    extract.mkdir()
    # No reporting_period_start column: the check cannot run, and says so rather than vanish.
    pd.DataFrame({"person_id": ["P1"], "la_code": [WALSALL]}).to_csv(
        extract / "social_care_events.csv", index=False
    )
    results, coverage = social_care_returns_check(
        extract, SocialCareSettings(local_authorities=[WALSALL]), date(2026, 9, 1), "warning"
    )
    assert coverage is None
    assert len(results) == 1
    (result,) = results
    assert result.kind == "social_care_returns" and not result.passed and result.severity == "warning"
    assert "reporting_period_start" in result.expected and "not readable" in result.expected


def test_gate_reads_the_returns_received_from_social_care_returns_when_present(tmp_path):
    from tests.ingest.test_validation import EXTRACT_DATE, valid_tables, write_extract

    tables = valid_tables()
    # Jan-Mar 2025 holds no event rows (all came again later), but its return was received.
    tables["social_care_events"] = _social_care(
        list(tables["patients"]["person_id"][1:21]), ["2024-10-01", "2025-04-01", "2025-07-01"], "E09000001"
    )
    tables["social_care_returns"] = pd.DataFrame(
        {
            "la_code": ["E09000001"] * 4,
            "reporting_period_start": pd.to_datetime(
                ["2024-10-01", "2025-01-01", "2025-04-01", "2025-07-01"]
            ),
            "rows": [7, 7, 7, 6],
        }
    )
    extract = write_extract(tmp_path / "extract", tables)
    report = run_validation(extract, tmp_path / "outputs", ValidationSettings(), EXTRACT_DATE)
    assert report.passed and report.warnings == [], report.warning_lines()
    assert report.social_care_returns["missing"] == []
    checked = {r.kind for r in report.results if r.table == "social_care_returns"}
    assert "table_present" in checked and len(checked) > 1  # the contract's own checks ran on it
