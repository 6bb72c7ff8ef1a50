"""CLD events -> social_care_events: resubmissions, text values, left-out rows, errors, round trip."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import codelist
from riskstrat.ingest.contract import CONTRACT, SOCIAL_CARE_EVENTS
from riskstrat.ingest.social_care import social_care_returns
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import read_raw
from riskstrat.ingest.sources.cld import CODED, NATIONAL, normalise

SOURCE = SOURCES["cld"]
FIELDS = SOURCE.field_names
WALSALL, DUDLEY = "E08000030", "E08000027"


def raw(rows: list[dict]) -> pd.DataFrame:
    """CLD rows as read: every field, text, missing where not given."""
    return pd.DataFrame([{f: r.get(f) for f in FIELDS} for r in rows]).astype("string")


def row(**values) -> dict:
    base = {
        "LA_Code": WALSALL,
        "Reporting_Period_Start_Date": "2025-07-01",
        "Reporting_Period_End_Date": "2026-06-30",
        "Der_NHS_Number_Traced_Pseudo": "P1",
        "Der_NHS_Number_Pseudo": "P1",
        "Client_Type": "Service User",
        "Event_Type": "Service",
        "Event_Start_Date": "2025-03-01",
        "Service_Type": "Long Term Support: Community",
        "Service_Component": "Home Support",
        "Primary_Support_Reason": "Physical Support: Personal care support",
        "Accommodation_Status": "Owner occupier or shared ownership scheme",
        "ImportDate": "2026-07-25 10:00:00",
    }
    base.update(values)
    return base


def events_of(output) -> list[dict]:
    frame = output.tables["social_care_events"]
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def test_keeps_each_events_latest_return_and_counts_the_rest():
    rows = [
        # The service in three returns: Jan-Mar 2026 (open), an early load of Apr-Jun 2026 and the last load.
        row(**{"Reporting_Period_End_Date": "2026-03-31", "Accommodation_Status": "Unknown"}),
        row(**{"ImportDate": "2026-07-20 09:00:00", "Primary_Support_Reason": "Unknown"}),
        row(**{"Event_End_Date": "2026-05-31"}),
        # Another person's request is another event; so is a second service component.
        row(
            **{
                "Der_NHS_Number_Traced_Pseudo": "P2",
                "Event_Type": "Request",
                "Service_Type": None,
                "Service_Component": None,
            }
        ),
        row(**{"Service_Component": "Meals"}),
    ]
    output = SOURCE.adapt(raw(rows))
    got = events_of(output)
    assert len(got) == 3
    service = next(e for e in got if e["person_id"] == "P1" and e["service_component"] == "home_care")
    assert service["event_end_date"] == pd.Timestamp("2026-05-31")  # the latest load of the latest return
    assert service["primary_support_reason"] == "physical_personal_care"
    assert service["accommodation_status"] == "own_home"
    assert service["reporting_period_start"] == pd.Timestamp("2026-04-01")
    assert service["service_type"] == "long_term_community"
    request = next(e for e in got if e["person_id"] == "P2")
    assert request["event_type"] == "request" and request["service_type"] is None
    assert any(n.startswith("2 resubmitted CLD event rows removed") for n in output.notes)
    frame = output.tables["social_care_events"]
    assert list(frame.columns) == list(SOCIAL_CARE_EVENTS.column_names)
    assert str(frame["event_start_date"].dtype) == "datetime64[s]"


def test_within_one_return_the_open_row_wins_then_the_latest_end_date():
    # Same event, same return and load (e.g. two cost lines): DHSC's GetUniqueEvents keeps the open row.
    open_first = [row(), row(**{"Event_End_Date": "2026-01-31"})]
    output = SOURCE.adapt(raw(open_first))
    assert [e["event_end_date"] for e in events_of(output)] == [None]
    assert any(n.startswith("1 duplicate CLD event rows within one return") for n in output.notes)
    assert not any("resubmitted" in n for n in output.notes)
    # Both closed: the later end date wins, whatever the file order.
    closed = [row(**{"Event_End_Date": "2026-05-31"}), row(**{"Event_End_Date": "2026-01-31"})]
    got = events_of(SOURCE.adapt(raw(closed)))
    assert [e["event_end_date"] for e in got] == [pd.Timestamp("2026-05-31")]


def test_returns_received_are_recorded_before_each_events_latest_return_is_kept():
    # Four rolling returns, all received, each holding the same open service: the events keep
    # only the latest, but all four returns were received (the reviewer's case).
    ends = ["2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31"]
    rows = [
        row(**{"LA_Code": "E06000053", "Reporting_Period_End_Date": end, "ImportDate": None}) for end in ends
    ]
    output = SOURCE.adapt(raw(rows))
    assert len(output.tables["social_care_events"]) == 1
    returns = output.tables["social_care_returns"]
    assert list(returns.columns) == list(CONTRACT["social_care_returns"].column_names)
    assert [q.date().isoformat() for q in returns["reporting_period_start"]] == [
        "2025-01-01",
        "2025-04-01",
        "2025-07-01",
        "2025-10-01",
    ]
    assert returns["rows"].tolist() == [1, 1, 1, 1]
    coverage = social_care_returns(returns, ["E06000053"], date(2026, 3, 31), date(2025, 1, 1))
    assert coverage.missing == [] and "4 of 4 due LA-quarters received" in coverage.headline()
    # Inferred from the events alone, three of the four would read as missing.
    events = output.tables["social_care_events"]
    assert len(social_care_returns(events, ["E06000053"], date(2026, 3, 31), date(2025, 1, 1)).missing) == 3


def test_text_values_match_whatever_their_case_and_spacing():
    rows = [
        row(
            **{
                "Service_Type": "  long term support :  NURSING care",
                "Service_Component": "LONG TERM NURSING CARE",
                "Primary_Support_Reason": "physical support:access & mobility only",
                "Client_Type": "SERVICE USER",
                "Event_Type": " service ",
                "Accommodation_Status": "Registered Nursing Home",
            }
        )
    ]
    (event,) = events_of(SOURCE.adapt(raw(rows)))
    assert event["service_type"] == "long_term_nursing"
    assert event["service_component"] == "nursing"
    assert event["primary_support_reason"] == "physical_access_mobility"
    assert event["accommodation_status"] == "care_home"


def test_unknown_values_are_reported_with_counts_and_rows_left_out_are_counted():
    rows = [row(**{"Event_Type": "Contact", "Der_NHS_Number_Traced_Pseudo": f"Q{i}"}) for i in range(2)] + [
        row(**{"Primary_Support_Reason": "Physical", "Der_NHS_Number_Traced_Pseudo": f"R{i}"})
        for i in range(3)
    ]
    rows += [
        row(**{"Der_NHS_Number_Traced_Pseudo": None, "Der_NHS_Number_Pseudo": None}),  # LA person ID only
        row(**{"Event_Type": None, "Client_Type": "Carer known by association"}),
        row(**{"Der_NHS_Number_Traced_Pseudo": None, "Der_NHS_Number_Pseudo": "S1"}),  # the LA's number
    ]
    output = SOURCE.adapt(raw(rows))
    coverage = {c.field: c for c in output.coverage}
    assert {u.code: u.rows for u in coverage["Event_Type"].unmapped} == {"contact": 2}
    assert {u.code: u.rows for u in coverage["Primary_Support_Reason"].unmapped} == {"physical": 3}
    assert coverage["Primary_Support_Reason"].mapped == coverage["Primary_Support_Reason"].rows - 3
    got = events_of(output)
    assert sorted(e["person_id"] for e in got) == ["R0", "R1", "R2", "S1"]
    assert all(e["primary_support_reason"] is None for e in got if e["person_id"].startswith("R"))
    notes = " | ".join(output.notes)
    assert "1 CLD rows without a pseudonymised NHS number" in notes
    assert "1 CLD rows without an event type" in notes
    assert "2 CLD rows with an unknown event type" in notes


def test_traced_number_wins_over_the_number_the_la_sent():
    (event,) = events_of(SOURCE.adapt(raw([row(**{"Der_NHS_Number_Pseudo": "WRONG"})])))
    assert event["person_id"] == "P1"


def test_la_code_that_is_not_an_ons_code_stops_with_the_field_and_an_example_id():
    with pytest.raises(ContractError) as caught:
        SOURCE.adapt(raw([row(**{"LA_Code": "503"}), row()]))
    problem = caught.value.problems[0]
    assert problem.column == "LA_Code" and problem.n_rows == 1 and problem.examples == ("P1",)


def test_a_missing_required_field_names_the_file_and_the_field(tmp_path):
    frame = raw([row()]).drop(columns=["Event_Start_Date"])
    path = tmp_path / "asc_cld_events.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ContractError) as caught:
        read_raw(path, SOURCE)
    message = str(caught.value)
    assert "asc_cld_events.csv" in message and "Event_Start_Date" in message


def test_a_date_that_does_not_parse_names_the_field():
    with pytest.raises(ContractError, match="Event_Start_Date"):
        SOURCE.adapt(raw([row(**{"Event_Start_Date": "01/03/2025"})]))


def test_code_list_codes_are_normalised_and_cover_the_writer_and_the_contract():
    values = codelist("cld_values")
    normalised = normalise(values["code"].astype("string"))
    assert (normalised == values["code"]).all()
    for cld_field, column in CODED.items():
        mine = values[values["field"] == cld_field]
        allowed = set(CONTRACT["social_care_events"].column(column).codes) | {"not_modelled"}
        assert set(mine["value"]) <= allowed, cld_field
        written = normalise(pd.Series(list(NATIONAL[column].values()), dtype="string"))
        assert set(written) <= set(mine["code"]), cld_field
        # Every contract value can be written and read back.
        assert set(NATIONAL[column]) == set(CONTRACT["social_care_events"].column(column).codes), column


def _contract_events(n_people: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    kinds = [
        ("service", "long_term_community", "home_care"),
        ("service", "long_term_residential", "residential"),
        ("service", "long_term_nursing", "nursing"),
        ("service", "short_term_reablement", "reablement"),
        ("service", "short_term_other", "residential"),
        ("request", None, None),
        ("assessment", None, None),
        ("review", None, None),
    ]
    quarters = pd.to_datetime(["2025-07-01", "2025-10-01", "2026-01-01", "2026-04-01"])
    rows = []
    for i in range(n_people):
        la = (WALSALL, DUDLEY)[i % 2]
        for k, (event_type, service_type, component) in enumerate(kinds[: 1 + i % len(kinds)]):
            start = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 480)))
            quarter = quarters[int(rng.integers(0, len(quarters)))]
            end = None if rng.random() < 0.4 else start + pd.Timedelta(days=int(rng.integers(0, 60)))
            rows.append(
                {
                    "person_id": f"P{i:04d}",
                    "la_code": la,
                    "reporting_period_start": quarter,
                    "event_type": event_type,
                    "event_start_date": start + pd.Timedelta(days=k),
                    "event_end_date": end,
                    "client_type": "carer" if i % 7 == 0 else "service_user",
                    "service_type": service_type,
                    "service_component": component,
                    "primary_support_reason": [None, "memory_cognition", "not_known", "sensory"][i % 4],
                    "accommodation_status": [
                        None,
                        "own_home",
                        "care_home",
                        "supported_accommodation",
                        "other",
                    ][k % 5],
                }
            )
    frame = pd.DataFrame(rows)
    for column in ("reporting_period_start", "event_start_date", "event_end_date"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    key = ["person_id", "event_type", "event_start_date", "service_type", "service_component"]
    frame = frame.sort_values(key, na_position="first").reset_index(drop=True)
    return frame.astype(object).where(frame.notna(), None)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_contract_to_national_and_back(tmp_path, suffix):
    events = _contract_events(400)
    national = SOURCE.to_national({"social_care_events": events}, np.random.default_rng(11))
    assert len(national) > len(events)  # resubmissions and rows the adapter leaves out
    assert national["Event_Type"].isin(["Contact"]).any()
    path = tmp_path / f"asc_cld_events{suffix}"
    if suffix == ".csv":
        national.to_csv(path, index=False)
    else:
        national.to_parquet(path, index=False)
    output = SOURCE.adapt(read_raw(path, SOURCE))
    pd.testing.assert_frame_equal(_sorted(output.tables["social_care_events"]), _sorted(events))
    assert any("resubmitted CLD event rows removed" in n for n in output.notes)
    coverage = {c.field: c for c in output.coverage}
    assert coverage["Event_Type"].unmapped[0].code == "contact"
    assert coverage["Service_Type"].share == 1.0


def test_without_a_cld_file_the_adapters_go_on_and_say_so(tmp_path):
    from fake_source import empty_contract_tables, fake_settings, registered_fake, write_raw_folder

    from riskstrat.ingest.sources.extract import adapt_extract
    from riskstrat.ingest.sources.settings import SourceSettings

    with registered_fake():
        tables = empty_contract_tables()
        cld_tables = SOURCE.writes  # social_care_events and social_care_returns
        for name in cld_tables:
            tables.pop(name)
        raw_dir = write_raw_folder(tmp_path / "raw", tables)
        fake = fake_settings()  # every real source off, other tables as contract files
        settings = SourceSettings(
            sources={**fake.sources, "cld": {"enabled": True}},
            contract_tables=tuple(t for t in fake.contract_tables if t not in cld_tables),
        )
        adapted = adapt_extract(raw_dir, settings)
    for name in cld_tables:
        assert name not in adapted.tables and name not in adapted.copied
    assert any(
        n.startswith("Adult Social Care Client Level Data (CLD): no file asc_cld_events")
        for n in adapted.notes
    )
