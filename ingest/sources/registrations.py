"""GP registrations and demographics (GDPPR style): one row per registration -> ``patients``.

Field names follow the GP data extract ICB analysts hold (GDPPR):
``NHS_NUMBER_DEID`` (the pseudonymised NHS number), ``YEAR_MONTH_OF_BIRTH``
(or ``DATE_OF_BIRTH``, cut to the month), ``SEX``, ``ETHNIC`` (an ETHNIC
CATEGORY letter or a SNOMED CT ethnicity concept, mixed as real extracts are),
``LSOA`` (2011 or 2021), ``PRACTICE``, ``REG_DATE``, ``REG_DATE_END`` and
``DATE_OF_DEATH``. A person with several registrations keeps the latest (by
``REG_DATE``); the others are counted in a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import code_map, codelist
from riskstrat.ingest.contract import ETHNIC_CATEGORY_CODES
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
from riskstrat.ingest.sources.lsoa import to_lsoa2011, to_lsoa2021

ID = "NHS_NUMBER_DEID"
ETHNICITY_LIST = "snomed_ethnicity"
SEX_CODES_READ: dict[str, str] = {
    "1": "1",
    "2": "2",
    "9": "9",
    "X": "X",
    "0": "X",
    "M": "1",
    "MALE": "1",
    "F": "2",
    "FEMALE": "2",
    "I": "9",
    "INDETERMINATE": "9",
    "U": "X",
    "UNKNOWN": "X",
    "NOT KNOWN": "X",
}
"""PERSON STATED GENDER CODE (1, 2, 9, X), the older PERSON GENDER CODE's 0 (not known) and words."""
ETHNIC_LETTERS_2021: dict[str, str] = {"T": "C", "W": "S"}
"""2021-census letters the 2001 categories do not have: Gypsy or Irish Traveller (T) is White other (C),
Arab (W) is any other ethnic group (S), as the 2021 -> 2001 collapse does."""
SNOMED_SHARE = 0.7
"""to_national: share of people whose ethnicity is written as a SNOMED CT concept (the rest as letters)."""
LSOA2021_SHARE = 0.4
"""to_national: share of people in a changed LSOA written with its 2021 code."""
EARLIER_REGISTRATION_SHARE = 0.05
"""to_national: share of people given an earlier, ended registration at another practice."""

FIELDS = (
    RawField(ID, "Pseudonymised NHS number -> person_id (never the NHS number itself)."),
    RawField(
        "YEAR_MONTH_OF_BIRTH", "Birth month YYYY-MM (or YYYYMM) -> birth_date (the 1st).", required=False
    ),
    RawField(
        "DATE_OF_BIRTH",
        "Date of birth, used when YEAR_MONTH_OF_BIRTH is absent; cut to the month.",
        required=False,
    ),
    RawField("SEX", "PERSON STATED GENDER CODE 1/2/9/X (0, M/F words accepted) -> sex.", coded="nhs_dd"),
    RawField(
        "ETHNIC",
        "ETHNIC CATEGORY letter or SNOMED CT ethnicity concept -> ethnic_category.",
        required=False,
        coded="snomed",
    ),
    RawField("LSOA", "LSOA 2011 or 2021 of residence -> lsoa_code (LSOA 2011).", coded="ons"),
    RawField("PRACTICE", "ODS code of the practice of registration -> practice_code."),
    RawField("REG_DATE", "Start of the registration -> registration_start.", required=False),
    RawField(
        "REG_DATE_END",
        "End of the registration (empty while registered) -> registration_end.",
        required=False,
    ),
    RawField("DATE_OF_DEATH", "Date of death -> date_of_death.", required=False),
)


def _text(values: pd.Series) -> pd.Series:
    return values.astype("str").where(values.notna(), None).astype("str")


def _latest_registration(frame: pd.DataFrame, start: pd.Series, end: pd.Series) -> tuple[np.ndarray, int]:
    """Row positions of each person's latest registration (latest start, then open or latest end)."""
    order = pd.DataFrame(
        {
            "id": frame[ID].to_numpy(),
            "start": start.fillna(pd.Timestamp.min).to_numpy(),
            "end": end.fillna(pd.Timestamp.max).to_numpy(),
            "row": np.arange(len(frame)),
        }
    ).sort_values(["id", "start", "end", "row"], kind="stable")
    last = np.sort(order.drop_duplicates("id", keep="last")["row"].to_numpy())
    return last, len(frame) - last.size


def _birth_month(frame: pd.DataFrame) -> pd.Series:
    """YEAR_MONTH_OF_BIRTH (YYYY-MM or YYYYMM) or DATE_OF_BIRTH, as the 1st of the month."""
    ids = frame[ID]
    month = frame["YEAR_MONTH_OF_BIRTH"].str.strip()
    if month.notna().any():
        digits = month.str.replace("-", "", regex=False)
        parsed = pd.to_datetime(digits, format="%Y%m", errors="coerce")
        bad = month.notna() & parsed.isna()
        if bad.any():
            raise ContractError(
                [raw_problem(SOURCE, "YEAR_MONTH_OF_BIRTH", "birth months YYYY-MM", bad, ids)]
            )
    else:
        parsed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if frame["DATE_OF_BIRTH"].notna().any():
        dob = parse_dates(SOURCE, frame, "DATE_OF_BIRTH", ids)
        parsed = parsed.fillna(dob)
    missing = parsed.isna()
    if missing.any():
        raise ContractError(
            [
                raw_problem(
                    SOURCE,
                    "YEAR_MONTH_OF_BIRTH",
                    "a birth month (or DATE_OF_BIRTH) on every row",
                    missing,
                    ids,
                )
            ]
        )
    return parsed.dt.to_period("M").dt.to_timestamp().astype("datetime64[s]")


def _sex(frame: pd.DataFrame) -> tuple[pd.Series, FieldCoverage]:
    """SEX onto PERSON STATED GENDER CODE; empty or unrecognised values become X (not known)."""
    sex, coverage = map_codes(
        SOURCE,
        "SEX",
        frame["SEX"],
        SEX_CODES_READ,
        "PERSON STATED GENDER CODE",
        "",
        normalise=lambda s: s.str.strip().str.upper(),
    )
    return sex.fillna("X"), coverage


def ethnicity_map() -> dict[str, str]:
    """Ethnicity code (SNOMED CT concept or ETHNIC CATEGORY letter) -> ETHNIC CATEGORY letter."""
    letters = {code: code for code in ETHNIC_CATEGORY_CODES}
    return {**code_map(ETHNICITY_LIST), **ETHNIC_LETTERS_2021, **letters}


def _ethnicity(frame: pd.DataFrame) -> tuple[pd.Series, FieldCoverage]:
    return map_codes(
        SOURCE,
        "ETHNIC",
        frame["ETHNIC"],
        ethnicity_map(),
        f"{ETHNICITY_LIST} + ETHNIC CATEGORY letters",
        "snomed",
        normalise=lambda s: s.str.strip().str.upper(),
    )


def adapt(frame: pd.DataFrame) -> SourceOutput:
    """GP registrations (national field names, text) -> ``patients``, one row per person."""
    for name in (ID, "PRACTICE"):
        require_values(SOURCE, frame, name, frame[ID] if name != ID else None)
    if frame["YEAR_MONTH_OF_BIRTH"].isna().all() and frame["DATE_OF_BIRTH"].isna().all():
        raise ContractError(
            [
                raw_problem(
                    SOURCE,
                    "YEAR_MONTH_OF_BIRTH",
                    "a birth month (or DATE_OF_BIRTH)",
                    frame[ID].notna(),
                    frame[ID],
                )
            ]
        )
    ids = frame[ID]
    start = parse_dates(SOURCE, frame, "REG_DATE", ids)
    end = parse_dates(SOURCE, frame, "REG_DATE_END", ids)
    keep, earlier = _latest_registration(frame, start, end)
    if earlier:
        frame, start, end = frame.iloc[keep].reset_index(drop=True), start.iloc[keep], end.iloc[keep]
    ids = frame[ID]
    require_values(SOURCE, frame, "LSOA", ids)
    birth = _birth_month(frame)
    death = parse_dates(SOURCE, frame, "DATE_OF_DEATH", ids)
    sex, sex_coverage = _sex(frame)
    ethnic, ethnic_coverage = _ethnicity(frame)
    lsoa, lsoa_coverage = to_lsoa2011(frame["LSOA"], SOURCE.name, "LSOA")
    patients = pd.DataFrame(
        {
            "person_id": _text(ids.str.strip()),
            "birth_date": birth.reset_index(drop=True),
            "sex": _text(sex),
            "ethnic_category": _text(ethnic),
            "lsoa_code": _text(lsoa),
            "practice_code": _text(frame["PRACTICE"].str.strip()),
            "registration_start": start.reset_index(drop=True),
            "registration_end": end.reset_index(drop=True),
            "date_of_death": death.reset_index(drop=True),
        }
    )
    coverage = [sex_coverage, ethnic_coverage, lsoa_coverage]
    counts = {"earlier_registrations": earlier}
    return SourceOutput({"patients": patients}, coverage, describe(counts, coverage), counts)


def describe(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The adapter's notes from its counts and the LSOA coverage (whole file or summed batches)."""
    notes: list[str] = []
    earlier = counts.get("earlier_registrations", 0)
    if earlier:
        notes.append(f"{earlier:,} earlier GP registrations removed (each person's latest registration kept)")
    (lsoa,) = [c for c in coverage if c.field == "LSOA"]
    if lsoa.mapped < lsoa.rows:
        notes.append(
            f"{lsoa.rows - lsoa.mapped:,} people have an LSOA that is neither an LSOA 2011 code "
            "nor a 2021 code in the ONS best-fit lookup; it is kept as supplied and the validation gate's "
            "lsoa_in_imd_lookup check reports it"
        )
    return notes


# -- the synthetic writer ----------------------------------------------------------------------------


def _iso(dates: pd.Series) -> pd.Series:
    return dates.dt.strftime("%Y-%m-%d").astype("string")


def _ethnicity_national(letters: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Letters as a SNOMED CT concept for about 70% of people, letters for the rest.

    People with no recorded ethnicity get, now and then, a code no list knows (an
    unknown SNOMED CT concept, a Read v2 code): noise that cannot destroy what the
    contract carries, since their ethnicity is empty either way.
    """
    table = codelist(ETHNICITY_LIST)
    by_letter = {letter: group["code"].to_numpy() for letter, group in table.groupby("value")}
    out = letters.astype("string").copy()
    u = rng.random(len(letters))
    pick = rng.random(len(letters))
    for letter, concepts in by_letter.items():
        rows = (letters == letter).fillna(False).to_numpy() & (u < SNOMED_SHARE)
        out[rows] = concepts[(pick[rows] * concepts.size).astype(int)]
    empty = letters.isna().to_numpy()
    noise = empty & (u < 0.1)
    out[noise] = np.where(pick[noise] < 0.5, "9S1..", "999999999999")
    return out


def _earlier_registrations(patients: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """An ended registration at another practice before the current one, for a few people."""
    start = patients["registration_start"]
    chosen = (start.notna() & pd.Series(rng.random(len(patients)) < EARLIER_REGISTRATION_SHARE)).to_numpy()
    earlier = patients[chosen].copy()
    practices = patients["practice_code"].unique()
    earlier["practice_code"] = practices[rng.integers(0, practices.size, len(earlier))]
    earlier["registration_end"] = earlier["registration_start"] - pd.Timedelta(days=1)
    earlier["registration_start"] = earlier["registration_end"] - pd.to_timedelta(
        rng.integers(30, 3650, len(earlier)), unit="D"
    )
    earlier["date_of_death"] = pd.NaT
    return earlier


def to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``patients`` as a GDPPR-style registrations file, with the variety real extracts carry.

    Ethnicity is a SNOMED CT concept for about 70% of people and a letter for the
    rest; LSOAs that changed in 2021 are written with their 2021 code for some
    people; a few people carry an earlier, ended registration. Everything the
    contract carries round-trips.
    """
    patients = tables["patients"].reset_index(drop=True)
    rows = pd.concat([patients, _earlier_registrations(patients, rng)], ignore_index=True)
    return pd.DataFrame(
        {
            ID: rows["person_id"].astype("string"),
            "YEAR_MONTH_OF_BIRTH": rows["birth_date"].dt.strftime("%Y-%m").astype("string"),
            "DATE_OF_BIRTH": pd.array([pd.NA] * len(rows), dtype="string"),
            "SEX": rows["sex"].astype("string"),
            "ETHNIC": _ethnicity_national(rows["ethnic_category"], rng),
            "LSOA": to_lsoa2021(rows["lsoa_code"], LSOA2021_SHARE, rng),
            "PRACTICE": rows["practice_code"].astype("string"),
            "REG_DATE": _iso(rows["registration_start"]),
            "REG_DATE_END": _iso(rows["registration_end"]),
            "DATE_OF_DEATH": _iso(rows["date_of_death"]),
        }
    )


SOURCE = register_source(
    Source(
        name="gp_registrations",
        title="GP registrations and demographics",
        file="gp_registrations",
        fields=FIELDS,
        writes=("patients",),
        adapt=adapt,
        to_national=to_national,
        batching=BY_PERSON,  # each person's latest registration: exact within a person's rows
        person=ID,
        describe=describe,
    )
)
