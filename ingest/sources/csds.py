"""Community Services Data Set (CSDS) care contacts -> ``community_contacts``.

As ICB analysts hold CSDS: the CYP201 care contact joined to the CYP102 service
or team type its referral is to, one row per contact per submission. Field names
are those of the national data warehouse's published CSDS tables:
``Person_ID`` (pseudonymised), ``CareContactID``, ``Contact_Date``,
``TeamType`` (SERVICE OR TEAM TYPE REFERRED TO (COMMUNITY CARE)),
``ConsMechanism`` (from 2023) or ``Consultation_MediumUsed`` (before),
``Activity_LocationType``, ``OrgID_Provider``, ``UniqueSubmissionID`` and
``Effective_From``.

Providers resubmit: the same contact appears in several monthly submissions.
Each contact (provider and contact ID) keeps its latest submission's row; how
many rows were removed is a note. Team types the models do not use (health
visiting, school nursing ...) are left out and counted; unknown team types are
left out and reported in the coverage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import code_map
from riskstrat.ingest.sources import register_source
from riskstrat.ingest.sources.base import (
    BY_PERSON,
    FieldCoverage,
    RawField,
    Source,
    SourceOutput,
    map_codes,
    parse_dates,
    raw_problem,
    require_values,
)

PERSON = "Person_ID"
CONTACT = "CareContactID"
SERVICE_LIST = "csds_service_type"
MEDIUM_LIST = "csds_consultation_medium"
NOT_MODELLED = "not_modelled"
NOT_KNOWN = "not_known"
HOME_LOCATIONS: tuple[str, ...] = ("A01", "A02")
"""ACTIVITY LOCATION TYPE CODE of a home visit: the patient's home, the carer's home."""
MECHANISM_FROM = pd.Timestamp("2023-04-01")
"""to_national: contacts from this date carry ConsMechanism, earlier ones Consultation_MediumUsed (CSDS v1.6)."""
RESUBMITTED_SHARE = 0.05
"""to_national: share of contacts that appear in two or three submissions."""
OTHER_TEAM_SHARE = 0.01
"""to_national: extra contacts with a team type the contract does not model, unknown or empty."""

FIELDS = (
    RawField(PERSON, "Pseudonymised person ID -> person_id."),
    RawField(CONTACT, "Care contact identifier; with OrgID_Provider, one contact across submissions."),
    RawField("Contact_Date", "Care contact date -> contact_date."),
    RawField(
        "TeamType", "SERVICE OR TEAM TYPE REFERRED TO (COMMUNITY CARE), CYP102 -> service.", coded="nhs_dd"
    ),
    RawField("ConsMechanism", "CONSULTATION MECHANISM (CSDS v1.6) -> mode.", required=False, coded="nhs_dd"),
    RawField(
        "Consultation_MediumUsed",
        "CONSULTATION MEDIUM USED (before v1.6), when ConsMechanism is empty.",
        required=False,
    ),
    RawField(
        "Activity_LocationType",
        "ACTIVITY LOCATION TYPE CODE: A01/A02 make a face-to-face contact a home visit.",
        required=False,
    ),
    RawField(
        "OrgID_Provider", "Provider ODS code (contact IDs are unique within a provider).", required=False
    ),
    RawField("UniqueSubmissionID", "The submission the row came in (higher = later).", required=False),
    RawField("Effective_From", "Date the submission took effect (later = newer).", required=False),
)


def _two_digits(codes: pd.Series) -> pd.Series:
    """Trim, and zero-pad one-digit codes ("1" -> "01"): numbers lose the zero in spreadsheets."""
    text = codes.astype("string").str.strip()
    return text.where(text.str.len() != 1, "0" + text)


def _latest_submission(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep each contact's row from its latest submission (Effective_From, then UniqueSubmissionID)."""
    effective = pd.to_datetime(frame["Effective_From"], format="ISO8601", errors="coerce")
    bad = frame["Effective_From"].notna() & effective.isna()
    if bad.any():  # a wrong date could make an older submission win: refuse rather than guess
        raise ContractError(
            [raw_problem(SOURCE, "Effective_From", "ISO dates (YYYY-MM-DD)", bad, frame[PERSON])]
        )
    submission_text = frame["UniqueSubmissionID"].str.strip()
    submission = pd.to_numeric(submission_text, errors="coerce")
    order = pd.DataFrame(
        {
            "provider": frame["OrgID_Provider"].fillna("").to_numpy(),
            # The person is part of the key: a contact ID is only unique within its provider, and
            # two people's contacts must never be taken for one resubmitted contact.
            "person": frame[PERSON].to_numpy(),
            "contact": frame[CONTACT].to_numpy(),
            "effective": effective.fillna(pd.Timestamp.min).to_numpy(),
            "submission": submission.fillna(-np.inf).to_numpy(),
            "submission_text": submission_text.fillna("").to_numpy(),
            "row": np.arange(len(frame)),
        }
    )
    order = order.sort_values(
        ["provider", "person", "contact", "effective", "submission", "submission_text", "row"], kind="stable"
    )
    keep = np.sort(order.drop_duplicates(["provider", "person", "contact"], keep="last")["row"].to_numpy())
    return frame.iloc[keep].reset_index(drop=True), len(frame) - keep.size


def _mode(frame: pd.DataFrame) -> tuple[pd.Series, FieldCoverage]:
    """Consultation mechanism (or the older medium) onto the contract's mode; 01 at home is a home visit."""
    codes = _two_digits(frame["ConsMechanism"]).fillna(_two_digits(frame["Consultation_MediumUsed"]))
    mode, coverage = map_codes(SOURCE, "ConsMechanism", codes, code_map(MEDIUM_LIST), MEDIUM_LIST, "")
    location = frame["Activity_LocationType"].str.strip().str.upper()
    at_home = (mode == "face_to_face").fillna(False) & location.isin(HOME_LOCATIONS).fillna(False)
    mode = mode.mask(at_home, "home_visit").mask(mode == NOT_KNOWN)
    return mode, coverage


def adapt(frame: pd.DataFrame) -> SourceOutput:
    """CSDS care contacts (national field names, text) -> ``community_contacts``."""
    for name in (PERSON, CONTACT):
        require_values(SOURCE, frame, name, frame[PERSON] if name != PERSON else None)
    require_values(SOURCE, frame, "Contact_Date", frame[PERSON])
    # Dates are checked on every row, before resubmissions are dropped.
    frame = frame.assign(contact_date=parse_dates(SOURCE, frame, "Contact_Date", frame[PERSON]))
    frame, removed = _latest_submission(frame)
    service, service_coverage = map_codes(
        SOURCE, "TeamType", _two_digits(frame["TeamType"]), code_map(SERVICE_LIST), SERVICE_LIST, ""
    )
    mode, mode_coverage = _mode(frame)
    not_modelled = (service == NOT_MODELLED).fillna(False)
    no_team = frame["TeamType"].isna()
    unknown = service.isna() & ~no_team
    counts = {
        "resubmitted": removed,
        "not_modelled": int(not_modelled.sum()),
        "unknown_team": int(unknown.sum()),
        "no_team": int(no_team.sum()),
    }
    keep = (service.notna() & ~not_modelled).to_numpy()
    contacts = pd.DataFrame(
        {
            "person_id": frame.loc[keep, PERSON].str.strip().astype("str"),
            "contact_date": frame.loc[keep, "contact_date"],
            "service": service[keep].astype("str"),
            "mode": mode[keep].astype("str"),
        }
    ).reset_index(drop=True)
    coverage = [service_coverage, mode_coverage]
    return SourceOutput({"community_contacts": contacts}, coverage, describe(counts, coverage), counts)


def describe(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The adapter's notes from its counts (whole file or summed batches)."""
    notes: list[str] = []
    if counts.get("resubmitted"):
        notes.append(
            f"{counts['resubmitted']:,} resubmitted CSDS care-contact rows removed "
            "(each contact's latest submission kept)"
        )
    for key, what in (
        ("not_modelled", "with a team type the models do not use (e.g. health visiting)"),
        ("unknown_team", "with an unknown team type (see the coverage report)"),
        ("no_team", "with no team type"),
    ):
        if counts.get(key):
            notes.append(f"{counts[key]:,} CSDS care contacts {what} left out")
    return notes


# -- the synthetic writer ----------------------------------------------------------------------------

SERVICE_CODES: dict[str, tuple[str, ...]] = {
    "district_nursing": ("12", "12", "12", "12", "43", "07"),
    "community_matron": ("19",),
    "urgent_community_response": ("51",),
    "falls": ("29",),
    "therapy": ("26", "23", "33", "27", "20"),
    "intermediate_care": ("53", "52", "54", "48"),
    "palliative": ("47", "14"),
    "virtual_ward": ("45",),
}
"""Team types written for each contract service (repeats weight the usual one)."""
OTHER_TEAM_CODES: tuple[str, ...] = ("16", "32", "40", "99", "A1", "")
"""Team types of the extra contacts: not modelled (16, 32, 40), unknown (99, A1) or empty."""
MODE_CODES: dict[str, tuple[str, ...]] = {
    "face_to_face": ("01",),
    "home_visit": ("01",),
    "telephone": ("02", "02", "02", "04"),
    "online": ("11", "05", "09"),
}


def _pick(values: pd.Series, choices: Mapping[str, tuple[str, ...]], rng: np.random.Generator) -> np.ndarray:
    """One national code per value, drawn from its choices (missing values stay missing)."""
    out = np.full(len(values), None, dtype=object)
    u = rng.random(len(values))
    for value, codes in choices.items():
        rows = (values == value).fillna(False).to_numpy()
        out[rows] = np.asarray(codes, dtype=object)[(u[rows] * len(codes)).astype(int)]
    return out


def _ids(prefix: str, person: pd.Series) -> np.ndarray:
    """Care contact IDs unique across the whole population: the person's ID and the contact's number.

    The synthetic writer calls :func:`to_national` chunk by chunk; people never span two
    chunks, so an ID built from the person is unique in the whole file (a row number is not).
    """
    person = person.astype("string").reset_index(drop=True)
    number = person.groupby(person, sort=False).cumcount().astype(str).str.zfill(4)
    return (prefix + person.astype(str) + "-" + number).to_numpy(dtype=object)


def _submission(day: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The monthly submission a contact first comes in: its ID (months since 2000) and effective date."""
    month = day.dt.year.to_numpy().astype(np.int64) * 12 + day.dt.month.to_numpy() - 2000 * 12 + 1
    effective = (day.dt.to_period("M") + 1).dt.to_timestamp() + pd.Timedelta(days=20)
    return month, effective.to_numpy()


def to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``community_contacts`` as CSDS care contacts with resubmissions and other team types.

    About 5% of contacts come again in one or two later submissions; the earlier
    copies carry another team type and medium, the latest the true values. About
    1% extra contacts have a team type the contract does not model, an unknown
    one or none: the adapter leaves them out, so the round trip is exact.
    """
    contacts = tables["community_contacts"].reset_index(drop=True)
    n = len(contacts)
    person = contacts["person_id"].astype("string")
    day = contacts["contact_date"]
    team = _pick(contacts["service"], SERVICE_CODES, rng)
    medium = _pick(contacts["mode"], MODE_CODES, rng)
    location = np.where(
        (contacts["mode"] == "home_visit").fillna(False).to_numpy(),
        "A01",
        np.where(rng.random(n) < 0.5, "B01", "E01"),
    ).astype(object)
    month, effective = _submission(day)
    base = pd.DataFrame(
        {
            PERSON: person,
            CONTACT: _ids("CC", person),
            "Contact_Date": day,
            "TeamType": team,
            "medium": medium,
            "Activity_LocationType": location,
            "OrgID_Provider": np.where(rng.random(n) < 0.7, "R1A", "R2B").astype(object),
            "UniqueSubmissionID": month,
            "Effective_From": effective,
        }
    )
    # Resubmissions: copy r (0, 1) comes in submission month + r with other values; the true
    # row comes last, in month + copies.
    again = np.flatnonzero(rng.random(n) < RESUBMITTED_SHARE)
    copies = rng.integers(1, 3, again.size)
    earlier = base.iloc[np.repeat(again, copies)].copy()
    rank = np.arange(earlier.shape[0]) - np.repeat(np.cumsum(copies) - copies, copies)
    all_teams = np.asarray(sum(SERVICE_CODES.values(), ()), dtype=object)
    earlier["TeamType"] = all_teams[rng.integers(0, all_teams.size, earlier.shape[0])]
    earlier["medium"] = np.where(rng.random(earlier.shape[0]) < 0.5, "02", "98").astype(object)
    earlier["UniqueSubmissionID"] = earlier["UniqueSubmissionID"].to_numpy() + rank
    earlier["Effective_From"] = earlier["Effective_From"] + pd.to_timedelta(31 * rank, unit="D")
    true_rows = base.index[again]
    base.loc[true_rows, "UniqueSubmissionID"] = base.loc[true_rows, "UniqueSubmissionID"].to_numpy() + copies
    base.loc[true_rows, "Effective_From"] = (
        base.loc[true_rows, "Effective_From"] + pd.to_timedelta(31 * copies, unit="D").to_numpy()
    )
    # Contacts the adapter leaves out: other team types.
    others = rng.choice(n, int(n * OTHER_TEAM_SHARE), replace=False) if n else np.array([], dtype=int)
    extra = base.iloc[others].copy()
    extra[CONTACT] = _ids("CX", extra[PERSON])
    extra["TeamType"] = np.asarray(OTHER_TEAM_CODES, dtype=object)[
        rng.integers(0, len(OTHER_TEAM_CODES), extra.shape[0])
    ]
    raw = pd.concat([earlier, base, extra], ignore_index=True)
    raw = raw.iloc[rng.permutation(len(raw))].reset_index(drop=True)
    newer = (raw["Contact_Date"] >= MECHANISM_FROM).to_numpy()
    medium_text = raw["medium"].astype("string")
    return pd.DataFrame(
        {
            PERSON: raw[PERSON].astype("string"),
            CONTACT: raw[CONTACT].astype("string"),
            "Contact_Date": raw["Contact_Date"].dt.strftime("%Y-%m-%d").astype("string"),
            "TeamType": raw["TeamType"].astype("string").replace("", pd.NA),
            "ConsMechanism": medium_text.where(newer),
            "Consultation_MediumUsed": medium_text.where(~newer),
            "Activity_LocationType": raw["Activity_LocationType"].astype("string"),
            "OrgID_Provider": raw["OrgID_Provider"].astype("string"),
            "UniqueSubmissionID": raw["UniqueSubmissionID"].astype("int64").astype("string"),
            "Effective_From": pd.to_datetime(raw["Effective_From"]).dt.strftime("%Y-%m-%d").astype("string"),
        }
    )


SOURCE = register_source(
    Source(
        name="csds",
        title="Community Services Data Set (CSDS)",
        file="csds_care_contacts",
        fields=FIELDS,
        writes=("community_contacts",),
        adapt=adapt,
        to_national=to_national,
        # A contact's submissions are deduplicated by provider, person and contact ID: exact
        # when all of a person's rows are adapted together.
        batching=BY_PERSON,
        person=PERSON,
        describe=describe,
    )
)
