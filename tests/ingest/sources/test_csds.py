"""CSDS care contacts -> community_contacts: resubmissions, team types, media, errors, round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import code_map
from riskstrat.ingest.contract import COMMUNITY_MODE_CODES, COMMUNITY_SERVICE_CODES
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings

SOURCE = SOURCES["csds"]
FIELDS = (
    "Person_ID",
    "CareContactID",
    "Contact_Date",
    "TeamType",
    "ConsMechanism",
    "Consultation_MediumUsed",
    "Activity_LocationType",
    "OrgID_Provider",
    "UniqueSubmissionID",
    "Effective_From",
)


def raw(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FIELDS)).astype("string")


ROWS = [
    # C1 comes in three submissions; the latest (submission 9, effective 2024-03-20) is the truth.
    ("P1", "C1", "2024-01-10", "26", "02", None, "B01", "RXA", "7", "2024-02-20"),
    ("P1", "C1", "2024-01-11", "12", "01", None, "A01", "RXA", "9", "2024-03-20"),
    ("P1", "C1", "2024-01-10", "51", "11", None, "B01", "RXA", "8", "2024-02-25"),
    # The same contact ID at another provider is another contact.
    ("P2", "C1", "2022-06-01", "19", None, "1", "E01", "RXB", "3", "2022-07-20"),
    ("P2", "C2", "2022-06-02", "16", "02", None, None, "RXB", "3", "2022-07-20"),  # health visiting
    ("P3", "C3", "2024-05-05", "A7", "05", None, None, "RXA", "9", "2024-06-20"),  # unknown team type
    ("P3", "C4", "2024-05-06", "47", "98", None, "A01", "RXA", "9", "2024-06-20"),  # other medium
    ("P3", "C5", "2024-05-07", None, "02", None, None, "RXA", "9", "2024-06-20"),  # no team type
]


def test_maps_hand_made_contacts_keeping_the_latest_submission():
    output = SOURCE.adapt(raw(ROWS))
    contacts = output.tables["community_contacts"]
    got = contacts.sort_values(["person_id", "contact_date"]).astype(object).where(contacts.notna(), None)
    assert got.values.tolist() == [
        ["P1", pd.Timestamp("2024-01-11"), "district_nursing", "home_visit"],
        ["P2", pd.Timestamp("2022-06-01"), "community_matron", "face_to_face"],  # "1" is 01
        ["P3", pd.Timestamp("2024-05-06"), "palliative", None],
    ]
    assert str(contacts["contact_date"].dtype) == "datetime64[s]"
    assert any(n.startswith("2 resubmitted CSDS care-contact rows removed") for n in output.notes)
    assert any(
        n.startswith("1 CSDS care contacts with a team type the models do not use") for n in output.notes
    )
    assert any(n.startswith("1 CSDS care contacts with an unknown team type") for n in output.notes)
    assert any(n.startswith("1 CSDS care contacts with no team type") for n in output.notes)
    coverage = {c.field: c for c in output.coverage}
    team = coverage["TeamType"]
    assert (team.rows, team.mapped) == (5, 4)  # after deduplication; 16 is a known, unmodelled type
    assert [(u.code, u.rows) for u in team.unmapped] == [("A7", 1)]
    assert coverage["ConsMechanism"].share == 1.0


def test_without_submission_fields_the_last_row_of_a_contact_is_kept():
    frame = raw(ROWS[:2])
    frame["UniqueSubmissionID"] = pd.NA
    frame["Effective_From"] = pd.NA
    contacts = SOURCE.adapt(frame).tables["community_contacts"]
    assert contacts["service"].tolist() == ["district_nursing"]


def test_code_lists_cover_every_contract_value():
    services = set(code_map("csds_service_type").values())
    assert services == {*COMMUNITY_SERVICE_CODES, "not_modelled"}
    modes = set(code_map("csds_consultation_medium").values())
    assert modes <= {*COMMUNITY_MODE_CODES, "not_known"}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("Contact_Date", "10/01/2024", "ISO dates"),
        ("Contact_Date", None, "a value on every row"),
        ("CareContactID", None, "a value on every row"),
    ],
)
def test_malformed_rows_are_rejected_naming_dataset_field_rows_and_ids(field, value, expected):
    frame = raw(ROWS)
    frame.loc[[3, 5], field] = value
    with pytest.raises(ContractError) as caught:
        SOURCE.adapt(frame)
    problem = caught.value.problems[0]
    assert problem.table == "Community Services Data Set (CSDS)"
    assert (problem.column, problem.n_rows, problem.examples) == (field, 2, ("P2", "P3"))
    assert expected in problem.expected


def test_round_trip_on_a_synthetic_population():
    population = generate_population(SyntheticSettings(), 2000, seed=5)
    contacts = population.tables["community_contacts"]
    national = SOURCE.to_national(population.tables, np.random.default_rng(3))
    key = ["OrgID_Provider", "CareContactID"]
    assert national.duplicated(key).mean() > 0.02  # resubmissions
    assert national["ConsMechanism"].notna().any() and national["Consultation_MediumUsed"].notna().any()
    output = SOURCE.adapt(national.astype("string"))
    order = ["person_id", "contact_date", "service", "mode"]
    back = output.tables["community_contacts"].sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, contacts.sort_values(order).reset_index(drop=True))
    team = next(c for c in output.coverage if c.field == "TeamType")
    assert 0.99 < team.share < 1.0  # a sprinkling of unknown team types, left out safely


def test_contacts_written_chunk_by_chunk_all_come_back():
    # The synthetic writer calls to_national once per chunk of people: care contact IDs must not
    # repeat across chunks, or the resubmission rule would collapse different people's contacts.
    population = generate_population(SyntheticSettings(), 2000, seed=5)
    contacts = population.tables["community_contacts"]
    people = contacts["person_id"].drop_duplicates()
    halves = [people.iloc[: len(people) // 2], people.iloc[len(people) // 2 :]]
    chunks = [
        SOURCE.to_national(
            {"community_contacts": contacts[contacts["person_id"].isin(half)]}, np.random.default_rng(i)
        )
        for i, half in enumerate(halves)
    ]
    output = SOURCE.adapt(pd.concat(chunks, ignore_index=True).astype("string"))
    assert len(output.tables["community_contacts"]) == len(contacts)


def test_two_peoples_contacts_sharing_an_id_are_never_merged_and_a_bad_effective_date_is_refused():
    rows = [
        ("P1", "C9", "2024-01-10", "12", "01", None, "A01", None, "7", "2024-02-20"),
        ("P2", "C9", "2024-01-12", "12", "01", None, "A01", None, "7", "2024-02-20"),  # no provider given
    ]
    contacts = SOURCE.adapt(raw(rows)).tables["community_contacts"]
    assert sorted(contacts["person_id"]) == ["P1", "P2"]
    bad = [(*rows[0][:9], "20/02/2024")]
    with pytest.raises(ContractError) as caught:
        SOURCE.adapt(raw(bad))
    problem = caught.value.problems[0]
    assert (problem.column, problem.n_rows, problem.examples) == ("Effective_From", 1, ("P1",))
