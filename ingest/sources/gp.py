"""GP data as ICB analysts hold it: coded events, medication issues and appointments.

Three sources, each one raw file:

- ``gp_events`` (GP coded events, as in the GP data for pandemic planning and research,
  GDPPR): one row per coded event with ``NHS_NUMBER_DEID``, ``DATE``, ``RECORD_DATE``,
  ``CODE`` (SNOMED CT) and ``VALUE1_CONDITION``. Codes are mapped to the condition
  vocabulary through the ``snomed_conditions`` list; a resolved code (``HYPRES_COD`` ...)
  becomes a row with status ``resolved``, a recorded eFI score a ``recorded_efi`` row with
  the score as ``value``. Most GP codes are not conditions (blood pressures, vaccinations,
  letters): those rows are counted in the coverage and left out of ``gp_diagnoses``.
- ``gp_medications`` (medication issues): ``NHS_NUMBER_DEID``, ``DATE`` and a BNF code
  (``BNF_Code``, any length, cut to chapter + section) or a dm+d code (``CODE``, mapped
  through a ``dmd_bnf`` list when one is shipped; none is shipped yet, see README).
- ``gp_appointments`` (practice-system appointments in the GP appointments data (GPAD)
  vocabulary): ``NHS_NUMBER_DEID``, ``Appointment_Date``, ``Appointment_Mode``,
  ``Appointment_Status``.

Each source's ``to_national`` writes contract tables back in the raw format, adding
the noise real extracts carry (see the functions' docstrings for what round-trips).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import codelist, manifest
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.reference import bnf_chapters
from riskstrat.ingest.sources import register_source
from riskstrat.ingest.sources.base import (
    ROWS,
    FieldCoverage,
    RawField,
    Source,
    SourceOutput,
    _once_per_value,
    map_codes,
    parse_dates,
    raw_problem,
    require_values,
)

PERSON = "NHS_NUMBER_DEID"
CONDITION_LIST = "snomed_conditions"
RECORDED_EFI = "recorded_efi"
"""Condition of a recorded eFI (or eFI2) score; its value is the score as a 0-1 fraction."""
DMD_LIST = "dmd_bnf"
MODE_LIST = "gp_appointment_modes"
STATUS_LIST = "gp_appointment_statuses"
UNKNOWN = "unknown"
"""Value of a recognised 'Unknown' (GPAD) in the appointment lists: counted as mapped, left empty."""
BNF_SECTION_LENGTH = 4

# Noise the national writer adds as extra rows (so every contract row still round-trips).
NOISE_SHARE = 0.01
NON_CONDITION_SNOMED = ("75367002", "271649006", "27113001", "60621009")
"""Real SNOMED CT codes that are not conditions (blood pressure, systolic blood pressure, body
weight, body mass index): most rows of a real GP extract look like these."""
READ_V2_CODES = ("G20..", "C10..", "H33..", "G30..", "XaJ0i", "14A7.")
"""Read v2 / CTV3 codes, as a legacy feed may leave in a SNOMED CT field (named wrong-system)."""


# -- helpers -------------------------------------------------------------------------------


def _text(values: pd.Series) -> pd.Series:
    """Text values as the generator writes them (pandas ``str``; missing stays missing)."""
    return values.astype("str")  # missing values become the str dtype's missing value


def _ids(frame: pd.DataFrame) -> pd.Series:
    return frame[PERSON]


def _map_by_category(values: pd.Series, mapping: Mapping[str, object]) -> pd.Series:
    """``values.map(mapping)`` through a categorical, so a dictionary lookup runs once per distinct code."""
    categories = values.astype("category")
    mapped = categories.cat.categories.map(lambda code: mapping.get(code))
    return pd.Series(
        np.asarray(mapped, dtype=object)[categories.cat.codes.to_numpy()], index=values.index
    ).where(categories.cat.codes.to_numpy() >= 0)


def _normalise_snomed(codes: pd.Series) -> pd.Series:
    """Strip spaces and a trailing ``.0`` (codes that passed through a float column)."""
    return _once_per_value(
        codes, lambda distinct: distinct.str.strip().str.replace(r"\.0$", "", regex=True).astype("string")
    )


def _words(values: pd.Series) -> pd.Series:
    """GPAD words compared without case or extra spaces ("Face-to-Face" = "face-to-face")."""
    return _once_per_value(
        values,
        lambda distinct: (
            distinct.str.strip().str.lower().str.replace(r"\s+", " ", regex=True).astype("string")
        ),
    )


def _iso(dates: pd.Series) -> pd.Series:
    return pd.Series(dates.dt.strftime("%Y-%m-%d"), index=dates.index, dtype="string")


# -- GP coded events -----------------------------------------------------------------------


def _efi_fraction(values: pd.Series) -> tuple[pd.Series, int]:
    """EFI scores as a 0-1 fraction: values in (1, 100] are percentages (divided by 100).

    Returns:
        The scores, and how many values were outside 0-100 (left empty).
    """
    scaled = values.where(values <= 1, values / 100)
    bad = values.notna() & ((values < 0) | (values > 100))
    return scaled.where(~bad), int(bad.sum())


def adapt_events(frame: pd.DataFrame) -> SourceOutput:
    """GP coded events -> ``gp_diagnoses`` (conditions, resolved codes, recorded eFI scores).

    ``DATE`` dates the event; where it is empty ``RECORD_DATE`` is used (GDPPR leaves
    ``DATE`` empty on some rows). Codes outside ``snomed_conditions`` are left out.

    Raises:
        ContractError: On a missing person or code, a date that does not parse, or an
            event with neither date.
    """
    ids = _ids(frame)
    require_values(GP_EVENTS, frame, PERSON, ids)
    require_values(GP_EVENTS, frame, "CODE", ids)
    event_date = parse_dates(GP_EVENTS, frame, "DATE", ids)
    record_date = parse_dates(GP_EVENTS, frame, "RECORD_DATE", ids)
    undated = event_date.isna() & record_date.isna()
    if undated.any():
        raise ContractError(
            [raw_problem(GP_EVENTS, "DATE", "a DATE or RECORD_DATE on every row", undated, ids)]
        )
    event_date = event_date.fillna(record_date)
    codes = _normalise_snomed(frame["CODE"])
    table = codelist(CONDITION_LIST)
    condition, coverage = map_codes(
        GP_EVENTS,
        "CODE",
        codes,
        dict(zip(table["code"], table["value"], strict=True)),
        CONDITION_LIST,
        "snomed",
    )
    keep = condition.notna().to_numpy()
    kept_codes = codes[keep]
    status = _map_by_category(kept_codes, dict(zip(table["code"], table["status"], strict=True)))
    raw_value = frame["VALUE1_CONDITION"][keep].str.strip()
    value = pd.to_numeric(raw_value, errors="coerce").astype("float64")
    unreadable = int((raw_value.notna() & value.isna()).sum())
    efi = (condition[keep] == RECORDED_EFI).to_numpy()
    scores, out_of_range = _efi_fraction(value[efi])
    value[efi] = scores
    diagnoses = pd.DataFrame(
        {
            "person_id": _text(ids[keep]),
            "event_date": event_date[keep],
            "condition": _text(condition[keep]),
            "snomed_code": _text(kept_codes),
            "status": _text(status),
            "value": value,
        }
    ).reset_index(drop=True)
    counts = {
        "events": len(frame),
        "conditions": int(keep.sum()),
        "resolved": int((diagnoses["status"] == "resolved").sum()),
        "efi_scores": int(efi.sum()),
        "bad_values": out_of_range + unreadable,
    }
    return SourceOutput({"gp_diagnoses": diagnoses}, [coverage], describe_events(counts, [coverage]), counts)


def describe_events(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The coded-events adapter's notes from its counts (whole file or summed batches)."""
    rows, kept = counts.get("events", 0), counts.get("conditions", 0)
    notes = [
        f"{kept:,} of {rows:,} GP coded events ({kept / rows:.1%}) carry a code of the condition list; "
        "the rest (observations, procedures, administrative codes) are not conditions and are left out."
        if rows
        else "no GP coded events"
    ]
    if counts.get("resolved"):
        notes.append(f"{counts['resolved']:,} resolved codes (a condition ended until recorded again).")
    if counts.get("efi_scores"):
        notes.append(
            f"{counts['efi_scores']:,} recorded eFI scores, read as 0-1 fractions (0-100 values divided by 100)."
        )
    if counts.get("bad_values"):
        notes.append(
            f"{counts['bad_values']:,} values in VALUE1_CONDITION were not numbers or not a 0-100 eFI score "
            "and were left empty."
        )
    return notes


def events_to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``gp_diagnoses`` as a GDPPR-style coded-events file.

    Each row gets a SNOMED CT code of its condition and status drawn from the shipped list
    (its own ``snomed_code`` when that maps back to the same condition), ``RECORD_DATE`` a
    few days after ``DATE`` on some rows, the eFI score in ``VALUE1_CONDITION``, and the
    practice from ``patients``. About 1% extra rows carry codes that are not conditions and
    Read v2 codes (counted in the coverage, left out on the way back). Everything the
    contract carries round-trips; a row whose condition and status have no code in the
    list (no resolved code is shipped for, e.g., anxiety) cannot, and is written with an
    empty code (the adapter then rejects the file: the generator makes none).
    """
    diagnoses = tables["gp_diagnoses"].reset_index(drop=True)
    table = codelist(CONDITION_LIST)
    status = diagnoses["status"].fillna("diagnosed").astype(str).to_numpy()
    condition = diagnoses["condition"].astype(str).to_numpy()
    code = np.full(len(diagnoses), None, dtype=object)
    keys = pd.Series(condition + "|" + status)
    options = table.groupby(table["value"] + "|" + table["status"])["code"].agg(list)
    for key, rows in keys.groupby(keys).groups.items():
        choices = options.get(key)
        if choices:
            code[np.asarray(rows)] = np.asarray(choices, dtype=object)[
                rng.integers(len(choices), size=len(rows))
            ]
    own = diagnoses["snomed_code"]
    same = own.notna() & (
        own.map(dict(zip(table["code"], table["value"], strict=True))) == diagnoses["condition"]
    )
    code = np.where(same.to_numpy(), own.astype(object).to_numpy(), code)
    delay = np.where(rng.random(len(diagnoses)) < 0.2, rng.integers(1, 30, len(diagnoses)), 0)
    value = diagnoses["value"]
    practice = _practices(tables, diagnoses["person_id"])
    raw = pd.DataFrame(
        {
            PERSON: diagnoses["person_id"].astype("string"),
            "DATE": _iso(diagnoses["event_date"]),
            "RECORD_DATE": _iso(diagnoses["event_date"] + pd.to_timedelta(delay, unit="D")),
            "CODE": pd.Series(code, dtype="string"),
            "VALUE1_CONDITION": pd.Series(
                np.where(value.notna(), value.map("{:g}".format, na_action="ignore"), None), dtype="string"
            ),
            "PRACTICE": practice,
        }
    )
    noise = _noise_rows(raw, rng, NON_CONDITION_SNOMED + READ_V2_CODES)
    return pd.concat([raw, noise], ignore_index=True)


def _practices(tables: Mapping[str, pd.DataFrame], person: pd.Series) -> pd.Series:
    patients = tables.get("patients")
    if patients is None:
        return pd.Series(pd.NA, index=person.index, dtype="string")
    by_person = patients.set_index("person_id")["practice_code"]
    return pd.Series(person.map(by_person).to_numpy(), dtype="string")


def _noise_rows(
    raw: pd.DataFrame, rng: np.random.Generator, codes: tuple[str, ...], field: str = "CODE"
) -> pd.DataFrame:
    """About 1% extra rows copied from random rows, with ``field`` drawn from ``codes``."""
    count = round(len(raw) * NOISE_SHARE)
    if count == 0:
        return raw.iloc[:0]
    noise = raw.iloc[rng.integers(len(raw), size=count)].copy()
    noise[field] = pd.array(
        np.asarray(codes, dtype=object)[rng.integers(len(codes), size=count)], dtype="string"
    )
    if "VALUE1_CONDITION" in noise:
        noise["VALUE1_CONDITION"] = pd.array([pd.NA] * count, dtype="string")
    return noise


GP_EVENTS = register_source(
    Source(
        name="gp_events",
        title="GP coded events",
        file="gp_events",
        fields=(
            RawField(PERSON, "Pseudonymised NHS number -> person_id."),
            RawField("DATE", "Date of the event (ISO) -> event_date; RECORD_DATE when empty.", required=True),
            RawField("RECORD_DATE", "Date the event was entered; used when DATE is empty.", required=False),
            RawField(
                "CODE",
                "SNOMED CT concept -> condition and status through snomed_conditions; other codes are left out.",
                coded="snomed",
            ),
            RawField(
                "VALUE1_CONDITION",
                "Numeric value -> value (an eFI score as a 0-1 fraction; 0-100 values divided by 100).",
                required=False,
            ),
            RawField(
                "PRACTICE", "ODS code of the practice (not used: registrations carry it).", required=False
            ),
        ),
        writes=("gp_diagnoses",),
        adapt=adapt_events,
        to_national=events_to_national,
        batching=ROWS,  # each event is adapted on its own
        person=PERSON,
        describe=describe_events,
    )
)


# -- GP medication issues ------------------------------------------------------------------


def _bnf_sections(codes: pd.Series) -> dict[str, str]:
    """BNF code (any length) -> chapter + section, for the distinct codes that look like BNF codes."""
    chapters = set(bnf_chapters()["chapter"].astype(str).str.zfill(2))
    distinct = pd.Series(codes.dropna().unique(), dtype="string")
    shaped = distinct.str.fullmatch(r"[0-9]{4}[0-9A-Z]{0,11}").fillna(False) & distinct.str[:2].isin(chapters)
    return dict(zip(distinct[shaped], distinct[shaped].str[:BNF_SECTION_LENGTH], strict=True))


def adapt_medications(frame: pd.DataFrame) -> SourceOutput:
    """Medication issues -> ``gp_medications`` (BNF chapter + section).

    ``BNF_Code`` is used where present (cut to four characters); otherwise the dm+d
    ``CODE`` is mapped through the ``dmd_bnf`` list when one is shipped. Rows with
    neither a BNF code nor a mapped dm+d code are left out and counted.

    Raises:
        ContractError: On a missing person or date, or a date that does not parse.
    """
    ids = _ids(frame)
    require_values(GP_MEDICATIONS, frame, PERSON, ids)
    require_values(GP_MEDICATIONS, frame, "DATE", ids)
    issue_date = parse_dates(GP_MEDICATIONS, frame, "DATE", ids)
    bnf = _once_per_value(
        frame["BNF_Code"],
        lambda distinct: distinct.str.upper().str.replace(" ", "", regex=False).astype("string"),
    )
    section, bnf_coverage = map_codes(
        GP_MEDICATIONS, "BNF_Code", bnf, _bnf_sections(bnf), "BNF (chapter + section)", "bnf"
    )
    dmd_map = _dmd_sections()
    # Only rows without a BNF code are read as dm+d (skipped outright when CODE is empty throughout:
    # at a million people this file has tens of millions of rows).
    dmd_wanted = bnf.isna() & frame["CODE"].notna()
    del bnf
    dmd_codes = _normalise_snomed(frame["CODE"][dmd_wanted])
    from_dmd, dmd_coverage = map_codes(GP_MEDICATIONS, "CODE", dmd_codes, dmd_map, DMD_LIST, "snomed")
    if dmd_wanted.any():
        section = section.fillna(from_dmd.reindex(section.index))
    del dmd_codes, from_dmd, dmd_wanted
    keep = section.notna().to_numpy()
    everything = bool(keep.all())  # the usual case: no copy of tens of millions of rows to filter
    medications = pd.DataFrame(
        {
            "person_id": _text(ids if everything else ids[keep]),
            "issue_date": issue_date if everything else issue_date[keep],
            "bnf_code": _text(section if everything else section[keep]),
        }
    ).reset_index(drop=True)
    counts = {"dropped": len(frame) - int(keep.sum())}
    coverage = [bnf_coverage, dmd_coverage]
    return SourceOutput(
        {"gp_medications": medications}, coverage, describe_medications(counts, coverage), counts
    )


def describe_medications(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The medication adapter's notes from its counts and dm+d coverage (whole file or summed batches)."""
    notes = []
    if counts.get("dropped"):
        notes.append(
            f"{counts['dropped']:,} medication issues had no recognised BNF code or mapped dm+d code and were "
            "left out."
        )
    (dmd,) = [c for c in coverage if c.field == "CODE"]
    if not _dmd_sections() and dmd.rows:
        notes.append(
            "No dm+d to BNF map is shipped: supply BNF_Code, or add a dmd_bnf code list (see codelists/README.md)."
        )
    return notes


def _dmd_sections() -> dict[str, str]:
    """dm+d code -> BNF chapter + section, from the ``dmd_bnf`` list when shipped (else empty)."""
    if DMD_LIST not in manifest():
        return {}
    table = codelist(DMD_LIST)
    return dict(zip(table["code"], table["value"].str[:BNF_SECTION_LENGTH], strict=True))


def medications_to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``gp_medications`` as a medication-issues file with ``BNF_Code``.

    The contract holds chapter + section only, so that is what is written (a longer BNF
    code would be invented). About 1% extra rows carry a dm+d product ID in ``BNF_Code``
    (named wrong-system) or a malformed BNF code; both are left out on the way back, so the
    contract rows round-trip.
    """
    medications = tables["gp_medications"].reset_index(drop=True)
    raw = pd.DataFrame(
        {
            PERSON: medications["person_id"].astype("string"),
            "DATE": _iso(medications["issue_date"]),
            "CODE": pd.Series(pd.NA, index=medications.index, dtype="string"),
            "BNF_Code": medications["bnf_code"].astype("string"),
        }
    )
    noise = _noise_rows(raw, rng, _MEDICATION_NOISE, field="BNF_Code")
    return pd.concat([raw, noise], ignore_index=True)


_MEDICATION_NOISE = ("10514511000001106", "10525011000001107", "9999", "ZZ01", "2A05")
"""Noise in BNF_Code: dm+d product IDs (wrong system) and malformed codes."""


GP_MEDICATIONS = register_source(
    Source(
        name="gp_medications",
        title="GP prescribing (medication issues)",
        file="gp_medications",
        fields=(
            RawField(PERSON, "Pseudonymised NHS number -> person_id."),
            RawField("DATE", "Issue date (ISO) -> issue_date."),
            RawField(
                "CODE",
                "dm+d product (SNOMED CT) -> BNF section through a dmd_bnf list, when BNF_Code is empty.",
                required=False,
                coded="dm+d",
            ),
            RawField(
                "BNF_Code",
                "BNF code of any length (0205, 0205051R0AAAAAA) -> bnf_code (chapter + section).",
                required=False,
                coded="bnf",
            ),
        ),
        writes=("gp_medications",),
        adapt=adapt_medications,
        to_national=medications_to_national,
        batching=ROWS,  # each issue is adapted on its own
        person=PERSON,
        describe=describe_medications,
    )
)


# -- GP appointments -----------------------------------------------------------------------


def _word_map(name: str) -> dict[str, str]:
    table = codelist(name)
    return dict(zip(table["code"], table["value"], strict=True))


def adapt_appointments(frame: pd.DataFrame) -> SourceOutput:
    """Practice-system appointments (GPAD words) -> ``gp_appointments``.

    Modes and statuses are matched without case or extra spaces; "Unknown" is
    recognised and left empty (a missing status counts as attended in the features).
    A status that is given but not in the list (Booked, Cancelled ...) leaves the
    appointment out, counted in a note: it did not take place as far as the record shows.

    Raises:
        ContractError: On a missing person or date, or a date that does not parse.
    """
    ids = _ids(frame)
    require_values(GP_APPOINTMENTS, frame, PERSON, ids)
    require_values(GP_APPOINTMENTS, frame, "Appointment_Date", ids)
    day = parse_dates(GP_APPOINTMENTS, frame, "Appointment_Date", ids)
    mode, mode_coverage = map_codes(
        GP_APPOINTMENTS,
        "Appointment_Mode",
        frame["Appointment_Mode"],
        _word_map(MODE_LIST),
        MODE_LIST,
        "",
        _words,
    )
    status, status_coverage = map_codes(
        GP_APPOINTMENTS,
        "Appointment_Status",
        frame["Appointment_Status"],
        _word_map(STATUS_LIST),
        STATUS_LIST,
        "",
        _words,
    )
    # A status given but not recognised (Booked, Cancelled, Walked Out, ...) is not an appointment
    # that took place: left out and counted, never counted as attended.
    unrecognised = (frame["Appointment_Status"].notna() & status.isna()).to_numpy()
    keep = ~unrecognised
    appointments = pd.DataFrame(
        {
            "person_id": _text(ids[keep]),
            "appointment_date": day[keep],
            "mode": _text(mode[keep].where(mode[keep] != UNKNOWN)),
            "status": _text(status[keep].where(status[keep] != UNKNOWN)),
        }
    ).reset_index(drop=True)
    counts = {"unrecognised_status": int(unrecognised.sum())}
    coverage = [mode_coverage, status_coverage]
    return SourceOutput(
        {"gp_appointments": appointments}, coverage, describe_appointments(counts, coverage), counts
    )


def describe_appointments(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The appointments adapter's notes from its counts (whole file or summed batches)."""
    if not counts.get("unrecognised_status"):
        return []
    return [
        f"{counts['unrecognised_status']:,} GP appointments with a status that is neither attended, did not "
        "attend nor unknown (e.g. booked or cancelled) were left out (see the coverage report)."
    ]


_MODE_WORDS = {
    "face_to_face": "Face-to-Face",
    "telephone": "Telephone",
    "home_visit": "Home Visit",
    "online": "Video Conference/Online",
}
_STATUS_WORDS = {"attended": "Attended", "dna": "Did Not Attend"}


def appointments_to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``gp_appointments`` in GPAD words; an empty mode or status becomes "Unknown".

    Noise: about 2% of statuses written "DNA" for "Did Not Attend" and about 2% of words in
    upper case, both recognised; nothing here is lost, so every row round-trips.
    """
    appointments = tables["gp_appointments"].reset_index(drop=True)
    mode = appointments["mode"].map(_MODE_WORDS).fillna("Unknown")
    status = appointments["status"].map(_STATUS_WORDS).fillna("Unknown")
    status = status.where(~((status == "Did Not Attend") & (rng.random(len(status)) < 0.02)), "DNA")
    shout = rng.random(len(mode)) < 0.02
    mode = mode.where(~shout, mode.str.upper())
    return pd.DataFrame(
        {
            PERSON: appointments["person_id"].astype("string"),
            "Appointment_Date": _iso(appointments["appointment_date"]),
            "Appointment_Mode": mode.astype("string"),
            "Appointment_Status": status.astype("string"),
        }
    )


GP_APPOINTMENTS = register_source(
    Source(
        name="gp_appointments",
        title="GP appointments",
        file="gp_appointments",
        fields=(
            RawField(PERSON, "Pseudonymised NHS number -> person_id."),
            RawField("Appointment_Date", "Date of the appointment (ISO) -> appointment_date."),
            RawField(
                "Appointment_Mode",
                "GPAD mode (Face-to-Face, Telephone, Home Visit, Video Conference/Online, Unknown) -> mode.",
                required=False,
                coded="GPAD",
            ),
            RawField(
                "Appointment_Status",
                "GPAD status (Attended, Did Not Attend / DNA, Unknown) -> status.",
                required=False,
                coded="GPAD",
            ),
        ),
        writes=("gp_appointments",),
        adapt=adapt_appointments,
        to_national=appointments_to_national,
        batching=ROWS,  # each appointment is adapted on its own
        person=PERSON,
        describe=describe_appointments,
    )
)

assert set(_MODE_WORDS) == set(CONTRACT["gp_appointments"].column("mode").codes or ()), (
    "GPAD modes must cover the contract"
)
