"""Emergency Care Data Set (ECDS), as ICB analysts hold it in the national warehouse -> ``ae_attendances``.

Field names follow the SUS+ ECDS tables (``EC_Ident``, ``Der_Pseudo_NHS_Number``,
``Arrival_Date``, ``Arrival_Time``, ``EC_Departure_Date``, ``EC_Departure_Time``,
``EC_Department_Type`` and the ``*_SNOMED_CT`` fields). Coded fields are mapped
through the shipped ECDS code lists (NHS Data Dictionary reference sets):

- arrival mode -> ``arrival_mode`` (ambulance / other), acuity -> ``acuity`` (1-5);
- discharge status and discharge destination together -> ``disposal`` (see :func:`disposal`);
- chief complaint -> ``complaint_group``; a recorded complaint the list does not
  know becomes ``other`` (and is counted as unmapped in the coverage);
- ``Der_EC_Diagnosis_All`` is not in the contract: its codes are only checked
  against the ECDS diagnosis refset, so the coverage report shows how complete it is.

Department types written without the leading zero (``1``) are padded (``01``);
any other value is passed on for the validation gate to reject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import code_map, codelist
from riskstrat.ingest.sources import register_source
from riskstrat.ingest.sources.base import (
    ROWS,
    FieldCoverage,
    RawField,
    Source,
    SourceOutput,
    map_codes,
    parse_dates,
    raw_problem,
    require_values,
)

ID = "EC_Ident"
PERSON = "Der_Pseudo_NHS_Number"
ARRIVAL_MODE_LIST = "ecds_arrival_mode"
ACUITY_LIST = "ecds_acuity"
STATUS_LIST = "ecds_discharge_status"
DESTINATION_LIST = "ecds_discharge_destination"
COMPLAINT_LIST = "ecds_chief_complaint"
DIAGNOSIS_LIST = "ecds_diagnosis"
DIAGNOSIS_SEPARATORS = r"[,;|]"
"""Der_EC_Diagnosis_All lists codes separated by commas (semicolons and bars are accepted too)."""
UNRECOGNISED_COMPLAINT = "other"
"""complaint_group of a recorded chief complaint the list does not recognise."""
DEFAULT_DISPOSAL = "discharged"
"""disposal when neither discharge status nor destination is recognised (counted in a note)."""
DISPOSAL_PRIORITY = ("died", "left", "admitted", "referred", "discharged")
"""The first of these that either field says wins (see :func:`disposal`)."""

FIELDS = (
    RawField(ID, "EMERGENCY CARE ATTENDANCE IDENTIFIER -> attendance_id."),
    RawField(PERSON, "Pseudonymised NHS number -> person_id (never the NHS number itself)."),
    RawField(
        "Arrival_Date", "EMERGENCY CARE ARRIVAL DATE (YYYY-MM-DD) -> arrival_datetime, with Arrival_Time."
    ),
    RawField("Arrival_Time", "EMERGENCY CARE ARRIVAL TIME (HH:MM[:SS]); empty = midnight.", required=False),
    RawField("EC_Departure_Date", "EMERGENCY CARE DEPARTURE DATE -> departure_datetime.", required=False),
    RawField("EC_Departure_Time", "EMERGENCY CARE DEPARTURE TIME (HH:MM[:SS]).", required=False),
    RawField(
        "EC_Department_Type",
        "EMERGENCY CARE DEPARTMENT TYPE 01-04 (1-4 padded) -> department_type.",
        required=False,
    ),
    RawField(
        "EC_Arrival_Mode_SNOMED_CT",
        "EMERGENCY CARE ARRIVAL MODE -> arrival_mode.",
        required=False,
        coded="snomed",
    ),
    RawField("EC_Acuity_SNOMED_CT", "EMERGENCY CARE ACUITY -> acuity 1-5.", required=False, coded="snomed"),
    RawField(
        "EC_Discharge_Status_SNOMED_CT",
        "EMERGENCY CARE DISCHARGE STATUS -> disposal (died, left, referred ...), with the destination.",
        coded="snomed",
    ),
    RawField(
        "Discharge_Destination_SNOMED_CT",
        "EMERGENCY CARE DISCHARGE DESTINATION -> disposal (admitted, referred, discharged, died), with the status.",
        coded="snomed",
    ),
    RawField(
        "EC_Chief_Complaint_SNOMED_CT",
        "EMERGENCY CARE CHIEF COMPLAINT -> complaint_group.",
        required=False,
        coded="snomed",
    ),
    RawField(
        "Der_EC_Diagnosis_All",
        "Every EMERGENCY CARE DIAGNOSIS of the attendance (comma-separated); coverage only.",
        required=False,
        coded="snomed",
    ),
)

_TIME = r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$"


def _text(values: pd.Series) -> pd.Series:
    """Text as pandas' default string dtype, missing values kept missing."""
    return values.astype("str").where(values.notna(), None).astype("str").reset_index(drop=True)


def _snomed(values: pd.Series) -> pd.Series:
    """Trim codes and drop a trailing ``.0`` (a SNOMED CT ID that went through a float column)."""
    return values.str.strip().str.replace(r"\.0$", "", regex=True)


def _clock(frame: pd.DataFrame, field_name: str, ids: pd.Series) -> pd.Series:
    """A time field (HH:MM, HH:MM:SS, with optional fraction) as a timedelta; empty = 0.

    Each distinct time is parsed once (a day has at most 86,400), so millions of rows stay fast.

    Raises:
        ContractError: Naming the field, the rows and example attendance IDs, if a time does not parse.
    """
    codes, uniques = pd.factorize(frame[field_name].str.strip())
    parts = pd.Series(uniques, dtype="string").str.extract(_TIME).astype("float64")
    hours, minutes, seconds = parts[0], parts[1], parts[2].fillna(0)
    bad_unique = (hours.isna() | (hours > 23) | (minutes > 59) | (seconds > 59)).to_numpy()
    seconds_of = np.append((hours.fillna(0) * 3600 + minutes.fillna(0) * 60 + seconds).to_numpy(), 0.0)
    # An empty time has code -1: it takes the appended last entry (not bad; 0 seconds).
    bad = pd.Series(np.append(bad_unique, False)[codes], index=frame.index)
    if bad.any():
        raise ContractError(
            [raw_problem(SOURCE, field_name, "times HH:MM[:SS] (00:00 to 23:59:59)", bad, ids)]
        )
    return pd.Series(pd.to_timedelta(seconds_of[codes].astype("int64"), unit="s"), index=frame.index)


def _date_time(frame: pd.DataFrame, date_field: str, time_field: str, ids: pd.Series) -> pd.Series:
    """A date field and a time field joined into one date-time (missing where the date is)."""
    day = parse_dates(SOURCE, frame, date_field, ids)
    return (day + _clock(frame, time_field, ids)).astype("datetime64[s]")


def _department_type(values: pd.Series) -> pd.Series:
    """Pad a one-digit department type (``1`` -> ``01``); other values are left for the gate to judge."""
    text = values.str.strip()
    return text.where(~text.str.fullmatch(r"\d").fillna(False), text.str.zfill(2))


def disposal(status: pd.Series, destination: pd.Series) -> tuple[pd.Series, int]:
    """The contract's disposal from the mapped discharge status and destination.

    Rule: died if either says died (dead on arrival, died in department, to the
    mortuary); else left if the status says the person left before assessment or
    treatment was complete; else admitted if the destination (ward, ICU, HDU, CCU,
    theatre) or the status (streamed to an inpatient unit) says admitted; else
    referred (streamed to GP, UTC, SDEC, mental health, falls or frailty service;
    transferred to another hospital or hospice; ED short-stay or ambulatory care);
    else discharged (treatment completed; home, care home, custody).

    Args:
        status: Mapped discharge status (a disposal value or missing).
        destination: Mapped discharge destination (a disposal value or missing).

    Returns:
        The disposal of every row and how many rows had neither field recognised
        (given :data:`DEFAULT_DISPOSAL`).
    """
    result = pd.Series(pd.NA, index=status.index, dtype="string")
    for value in reversed(DISPOSAL_PRIORITY):
        says = (status == value).fillna(False) | (destination == value).fillna(False)
        result = result.mask(says, value)
    unknown = int(result.isna().sum())
    return result.fillna(DEFAULT_DISPOSAL), unknown


def _diagnosis_coverage(values: pd.Series) -> FieldCoverage:
    """Coverage of every code in Der_EC_Diagnosis_All (counted per code, not per attendance).

    Lists are split once per distinct list and weighted by how often each occurs.
    """
    lists = values.dropna().value_counts()
    codes = pd.Series(lists.index, dtype="string").str.split(DIAGNOSIS_SEPARATORS, regex=True)
    repeats = codes.str.len().to_numpy()
    flat = _snomed(pd.Series(np.concatenate([[], *codes.to_numpy()]), dtype="string"))
    flat = flat.repeat(np.repeat(lists.to_numpy(), repeats)).reset_index(drop=True)
    flat = flat[flat.notna() & (flat != "")]
    _, coverage = map_codes(
        SOURCE, "Der_EC_Diagnosis_All", flat, code_map(DIAGNOSIS_LIST), DIAGNOSIS_LIST, "snomed"
    )
    return coverage


def adapt(frame: pd.DataFrame) -> SourceOutput:
    """ECDS attendances (national field names, text) -> ``ae_attendances``."""
    require_values(SOURCE, frame, ID)
    ids = frame[ID].str.strip()
    for name in (PERSON, "Arrival_Date"):
        require_values(SOURCE, frame, name, ids)
    arrival = _date_time(frame, "Arrival_Date", "Arrival_Time", ids)
    departure = _date_time(frame, "EC_Departure_Date", "EC_Departure_Time", ids)

    def mapped(field_name: str, codelist_name: str) -> tuple[pd.Series, FieldCoverage]:
        return map_codes(
            SOURCE, field_name, frame[field_name], code_map(codelist_name), codelist_name, "snomed", _snomed
        )

    arrival_mode, arrival_coverage = mapped("EC_Arrival_Mode_SNOMED_CT", ARRIVAL_MODE_LIST)
    acuity, acuity_coverage = mapped("EC_Acuity_SNOMED_CT", ACUITY_LIST)
    status, status_coverage = mapped("EC_Discharge_Status_SNOMED_CT", STATUS_LIST)
    destination, destination_coverage = mapped("Discharge_Destination_SNOMED_CT", DESTINATION_LIST)
    complaint, complaint_coverage = mapped("EC_Chief_Complaint_SNOMED_CT", COMPLAINT_LIST)
    recorded = _snomed(frame["EC_Chief_Complaint_SNOMED_CT"]).fillna("") != ""
    complaint = complaint.mask(recorded & complaint.isna(), UNRECOGNISED_COMPLAINT)
    outcome, unknown = disposal(status, destination)
    counts = {"unknown_disposal": unknown}
    table = pd.DataFrame(
        {
            "attendance_id": _text(ids),
            "person_id": _text(frame[PERSON].str.strip()),
            "arrival_datetime": arrival.reset_index(drop=True),
            "departure_datetime": departure.reset_index(drop=True),
            "department_type": _text(_department_type(frame["EC_Department_Type"])),
            "arrival_mode": _text(arrival_mode),
            "acuity": pd.array(pd.to_numeric(acuity), dtype="Int64"),
            "disposal": _text(outcome),
            "complaint_group": _text(complaint),
        }
    )
    coverage = [
        arrival_coverage,
        acuity_coverage,
        status_coverage,
        destination_coverage,
        complaint_coverage,
        _diagnosis_coverage(frame["Der_EC_Diagnosis_All"]),
    ]
    return SourceOutput({"ae_attendances": table}, coverage, describe(counts, coverage), counts)


def describe(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The adapter's notes from its counts (whole file or summed batches)."""
    unknown = counts.get("unknown_disposal", 0)
    if not unknown:
        return []
    return [
        f"{unknown:,} ECDS attendances had no recognised discharge status or destination: "
        f"disposal set to {DEFAULT_DISPOSAL}"
    ]


# -- the synthetic writer ----------------------------------------------------------------------------

STATUS_FOR: dict[str, tuple[str, ...]] = {
    "died": ("75004002", "63238001"),
    "left": ("1066301000000103", "1066311000000101", "1066321000000107"),
    "discharged": ("182992009",),
}
"""to_national: discharge status codes written for a disposal that the status decides."""
DESTINATION_FOR: dict[str, tuple[str, ...]] = {
    "died": ("305398007",),
}
"""to_national: discharge destination of a death in the department."""
NOISE_SHARE = 0.01
"""to_national: share of rows given an unmappable or wrong-system code where it loses nothing."""
UNKNOWN_SNOMED = ("22298006", "38341003", "999999999999")
"""Codes no ECDS list holds: SNOMED CT concepts outside the refsets (myocardial infarction,
hypertension) and a number that is no SNOMED CT ID."""
WRONG_SYSTEM = {
    "EC_Chief_Complaint_SNOMED_CT": ("182..", "R0651"),
    "Der_EC_Diagnosis_All": ("R07.4", "J18.9", "I21.9"),
}
"""Codes of another system real extracts carry now and then: Read v2 in a SNOMED CT field, ICD-10 among diagnoses."""
DIAGNOSES_FOR: dict[str, tuple[str, ...]] = {
    "injury": ("44465007", "281900007"),
    "mental_health": ("35489007", "197480006", "13746004"),
    "self_harm": ("35489007", "197480006"),
    "alcohol_drugs": ("25702006",),
    "chest_pain": ("401303003", "401314000", "49436004", "281900007"),
    "breathing": ("195951007", "195967001", "233604007", "50417007", "84114007"),
    "abdominal": ("281900007",),
    "falls_collapse": ("281900007", "49436004"),
    "neurological": ("230690007", "266257000"),
    "infection_fever": ("233604007", "128045006", "45816000", "6142004"),
    "frailty_general": ("271737000", "281900007"),
    "other": ("281900007", "44054006"),
}
"""to_national: ECDS diagnosis refset members written for each complaint group (synthetic, a plausible few)."""


def _choose(options: Mapping[str, np.ndarray], values: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """For each row, one code drawn from the options of its value (None where it has none)."""
    out = np.full(len(values), None, dtype=object)
    u = rng.random(len(values))
    keys = values.to_numpy(dtype=object, na_value=None)
    for value, codes in options.items():
        rows = keys == value
        out[rows] = codes[(u[rows] * codes.size).astype(int)]
    return out


def _inverse(codelist_name: str, basis: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Contract value -> every code of the list that maps to it (several where the refset has several)."""
    table = codelist(codelist_name)
    if basis is not None:
        table = table[table["basis"].isin(basis)]
    return {str(value): group["code"].to_numpy(dtype=object) for value, group in table.groupby("value")}


def _split(values: pd.Series, fmt: str) -> pd.Series:
    return values.dt.strftime(fmt).astype("string")


def _discharge(disposals: pd.Series, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Discharge status and destination codes that give back each disposal under :func:`disposal`.

    Admitted comes from the destination; left and died from the status; referred
    half from a streamed-to status, half from a transfer or same-day-care destination;
    discharged from a home or care-home destination, usually with 'treatment completed'.
    A status or destination that would not change the disposal is sometimes left
    empty, and about 1% of destinations that do not decide it carry an unmappable code.
    """
    n = len(disposals)
    value = disposals.to_numpy(dtype=object, na_value=None)
    status_codes = {k: np.array(v, dtype=object) for k, v in STATUS_FOR.items()}
    streamed = codelist(STATUS_LIST)
    streamed = streamed.loc[streamed["value"] == "referred", "code"].to_numpy(dtype=object)
    destinations = _inverse(DESTINATION_LIST)
    status = _choose(status_codes, disposals, rng)
    destination = _choose(
        {**destinations, **{k: np.array(v, dtype=object) for k, v in DESTINATION_FOR.items()}}, disposals, rng
    )
    u = rng.random(n)
    referred = value == "referred"
    by_status = referred & (u < 0.5)
    status[by_status] = streamed[rng.integers(0, streamed.size, int(by_status.sum()))]
    home = destinations["discharged"]
    destination[by_status] = np.where(rng.random(int(by_status.sum())) < 0.5, None, home[0])
    # 'Treatment completed' alongside a destination that decides the disposal, or nothing.
    completed = ((value == "admitted") | (referred & ~by_status)) & (rng.random(n) < 0.7)
    status[completed] = STATUS_FOR["discharged"][0]
    no_status = (value == "discharged") & (rng.random(n) < 0.2)
    status[no_status] = None
    # Where the status decides, the destination may be empty, another code, or noise.
    status_decides = np.isin(value, ["left", "died"]) | ((value == "discharged") & ~no_status)
    destination[status_decides & (value == "left")] = np.where(
        rng.random(int((status_decides & (value == "left")).sum())) < 0.5, None, home[0]
    )
    noise = status_decides & (rng.random(n) < NOISE_SHARE)
    destination[noise] = np.array(UNKNOWN_SNOMED, dtype=object)[
        rng.integers(0, len(UNKNOWN_SNOMED), int(noise.sum()))
    ]
    return status, destination


def _complaints(groups: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """A chief-complaint code for each group; an unmappable or Read code now and then for 'other'."""
    codes = _choose(_inverse(COMPLAINT_LIST, ("term", "series")), groups, rng)
    other = (groups == UNRECOGNISED_COMPLAINT).fillna(False).to_numpy()
    u = rng.random(len(groups))
    unknown = other & (u < 3 * NOISE_SHARE)
    codes[unknown] = UNKNOWN_SNOMED[0]
    read = other & (u >= 3 * NOISE_SHARE) & (u < 4 * NOISE_SHARE)
    codes[read] = WRONG_SYSTEM["EC_Chief_Complaint_SNOMED_CT"][0]
    return codes


def _diagnoses(groups: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Der_EC_Diagnosis_All: one or two refset diagnoses fitting the complaint, with gaps and noise.

    About 10% of attendances have no diagnosis; about 2% carry an ICD-10 code and
    1% a SNOMED CT concept outside the ECDS diagnosis refset.
    """
    n = len(groups)
    options = {k: np.array(v, dtype=object) for k, v in DIAGNOSES_FOR.items()}
    filled = groups.fillna("other")
    first = _choose(options, filled, rng)
    second = _choose(options, filled, rng)
    u = rng.random(n)
    text = np.where(
        (u < 0.25) & (second != first), first.astype(str) + "," + second.astype(str), first.astype(str)
    )
    icd = (u >= 0.25) & (u < 0.27)
    text[icd] = (
        text[icd]
        + ","
        + np.array(WRONG_SYSTEM["Der_EC_Diagnosis_All"], dtype=object)[rng.integers(0, 3, int(icd.sum()))]
    )
    other = (u >= 0.27) & (u < 0.28)
    text[other] = text[other] + "," + UNKNOWN_SNOMED[0]
    empty = rng.random(n) < 0.10
    return pd.Series(np.where(empty, None, text), dtype="string")


def to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``ae_attendances`` as an ECDS extract, with the variety real extracts carry.

    Dates and times are split into their own fields; each contract value becomes
    one of the SNOMED CT codes that map to it; disposal is spread over discharge
    status and destination (see :func:`_discharge`); about 30% of type 01
    departments are written ``1``. Noise goes only where it loses nothing: unknown
    destinations where the status decides, unknown or Read codes in place of
    chief complaints grouped 'other', ICD-10 and out-of-refset codes among the
    diagnoses. Everything the contract carries round-trips.
    """
    ae = tables["ae_attendances"].reset_index(drop=True)
    n = len(ae)
    department = ae["department_type"].astype("string")
    unpadded = (department == "01").fillna(False).to_numpy() & (rng.random(n) < 0.3)
    department = department.mask(unpadded, "1")
    status, destination = _discharge(ae["disposal"].astype("string"), rng)
    acuity = ae["acuity"].astype("Int64").astype("string")
    return pd.DataFrame(
        {
            ID: ae["attendance_id"].astype("string"),
            PERSON: ae["person_id"].astype("string"),
            "Arrival_Date": _split(ae["arrival_datetime"], "%Y-%m-%d"),
            "Arrival_Time": _split(ae["arrival_datetime"], "%H:%M:%S"),
            "EC_Departure_Date": _split(ae["departure_datetime"], "%Y-%m-%d"),
            "EC_Departure_Time": _split(ae["departure_datetime"], "%H:%M:%S"),
            "EC_Department_Type": department,
            "EC_Arrival_Mode_SNOMED_CT": pd.array(
                _choose(_inverse(ARRIVAL_MODE_LIST), ae["arrival_mode"].astype("string"), rng), dtype="string"
            ),
            "EC_Acuity_SNOMED_CT": pd.array(_choose(_inverse(ACUITY_LIST), acuity, rng), dtype="string"),
            "EC_Discharge_Status_SNOMED_CT": pd.array(status, dtype="string"),
            "Discharge_Destination_SNOMED_CT": pd.array(destination, dtype="string"),
            "EC_Chief_Complaint_SNOMED_CT": pd.array(
                _complaints(ae["complaint_group"].astype("string"), rng), dtype="string"
            ),
            "Der_EC_Diagnosis_All": _diagnoses(ae["complaint_group"].astype("string"), rng),
        }
    )


SOURCE = register_source(
    Source(
        name="ecds",
        title="Emergency Care Data Set (ECDS)",
        file="ecds",
        fields=FIELDS,
        writes=("ae_attendances",),
        adapt=adapt,
        to_national=to_national,
        batching=ROWS,  # one row per attendance, each adapted on its own
        person=PERSON,
        describe=describe,
    )
)
