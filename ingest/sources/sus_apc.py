"""SUS+ Admitted Patient Care spells, as ICB analysts see them in the national warehouse.

Reads one row per hospital provider spell (``APCS_Ident``) with the field names of
the NCDR / UDAL ``APCS`` tables and writes the contract table ``apc_spells``:

- dates pass through (ISO); admission and discharge method are NHS Data Dictionary
  codes already and pass through as text, untouched: a value such as ``21.0`` or
  `` 21`` is not guessed at, the validation gate reports it;
- ``Discharge_Destination`` (NHS Data Dictionary DISCHARGE DESTINATION CODE) is mapped
  through the shipped list ``sus_discharge_destination``;
- ICD-10 diagnoses (``Der_Primary_Diagnosis_Code`` and ``Der_Diagnosis_All``) are
  normalised by :func:`normalise_icd10`, the one home of that rule, and kept when their
  3-character category is a real ICD-10 category (shipped list ``icd10_categories``).
  Anything else (a Read code, an unknown category, an OPCS-4 procedure code whose first
  three characters are not an ICD-10 category) is dropped from the contract and counted in
  the coverage report, with its coding system named. Most OPCS-4 codes (K40.1, W37.1)
  share their shape and category with an ICD-10 code and cannot be told apart: a
  diagnosis field that carries procedures is not detected.

``Der_Diagnosis_All`` comes in several forms; all of these are read:
``||I500 ,I10X ,E119 ||N179`` (the warehouse form: ``||`` between episodes, ``,``
between codes, codes padded to four characters), ``I50.0,I10,E11.9`` and
``I500;I10;E119``. Codes repeated across the spell's episodes are kept once, in the
order first seen, after the primary diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskstrat.ingest.codelists import code_map, codelist
from riskstrat.ingest.contract import CONTRACT, DIAGNOSIS_SEPARATOR
from riskstrat.ingest.sources import register_source
from riskstrat.ingest.sources.base import (
    ROWS,
    FieldCoverage,
    RawField,
    Source,
    SourceOutput,
    field_coverage,
    map_codes,
    parse_dates,
    require_values,
)

SPELL_ID = "APCS_Ident"
PERSON_ID = "Der_Pseudo_NHS_Number"
ADMISSION_DATE = "Admission_Date"
DISCHARGE_DATE = "Discharge_Date"
ADMISSION_METHOD = "Admission_Method"
DISCHARGE_DESTINATION = "Discharge_Destination"
DISCHARGE_METHOD = "Discharge_Method"
PRIMARY_DIAGNOSIS = "Der_Primary_Diagnosis_Code"
ALL_DIAGNOSES = "Der_Diagnosis_All"

DESTINATION_LIST = "sus_discharge_destination"
CATEGORY_LIST = "icd10_categories"

CODE_SEPARATORS = r"[,;|]+"
"""Separators between codes in ``Der_Diagnosis_All``: ``||`` (episodes), ``,`` and ``;``."""
_MARKS = r"[\s\u2020\u2021*+!]"
"""Removed from a code before its shape is read: spaces, dagger (†, ‡, +), asterisk (*), ``!``."""
_ICD10_SHAPE = r"^([A-Z][0-9]{2})(?:\.?(?:X|([0-9])([0-9])?))?-*[AD]?-*$"
"""An ICD-10 code once upper-cased and cleaned: the category, an optional 4th character
(``X`` pads an undivided category, as SUS writes ``I10X``) and 5th digit, then the
NHS Data Dictionary's ``-`` filler and ``A`` (asterisk) / ``D`` (dagger) indicator."""


def normalise_icd10(codes: pd.Series) -> pd.Series:
    """ICD-10 codes as the contract holds them: upper case, no dot, no padding, no marks.

    ``I50.0`` and ``I500`` -> ``I500``; ``I10X`` and ``I10`` -> ``I10``; ``K57.3-`` -> ``K573``;
    ``G30.9†``, ``G309D``, ``F00.9*``, ``F009-A`` -> ``G309``, ``F009`` (dagger and asterisk
    marks, whether written as symbols or as the Data Dictionary's ``D``/``A``); lower case
    is upper-cased. A dot is only read as ICD-10's after the category, so the Read code
    ``G30..`` is not taken for the ICD-10 category ``G30``.

    Args:
        codes: Codes as text (missing values stay missing).

    Returns:
        The normalised codes (3 to 5 characters), missing where the text does not have the
        shape of an ICD-10 code. Whether the category is a real one is a separate question
        (:func:`is_icd10_category`).
    """
    values = pd.Series(codes, copy=False).astype("string")
    unique = pd.Series(values.dropna().unique(), dtype="string")
    cleaned = unique.str.upper().str.replace(_MARKS, "", regex=True)
    parts = cleaned.str.extract(_ICD10_SHAPE)
    normalised = parts[0] + parts[1].fillna("") + parts[2].fillna("")
    lookup = dict(zip(unique.to_numpy(), normalised.to_numpy(), strict=True))
    return values.map(lookup, na_action="ignore").astype("string")


@cache
def icd10_categories() -> frozenset[str]:
    """The real 3-character ICD-10 categories (shipped list ``icd10_categories``)."""
    return frozenset(codelist(CATEGORY_LIST)["code"])


def is_icd10_category(codes: pd.Series) -> pd.Series:
    """Whether each normalised code's 3-character category is a real ICD-10 category."""
    text = pd.Series(codes, copy=False).astype("string")
    return text.str[:3].isin(icd10_categories()).fillna(False).astype(bool) & text.notna()


def icd10_condition(codes: pd.Series) -> pd.Series:
    """The condition vocabulary name of each normalised ICD-10 code (shipped list ``icd10_conditions``).

    A code takes the condition of its longest listed prefix (``I110`` -> heart_failure,
    ``I119`` -> hypertension); missing where no prefix is listed.
    """
    mapping = code_map("icd10_conditions")
    lengths = sorted({len(code) for code in mapping}, reverse=True)
    text = pd.Series(codes, copy=False).astype("string")
    unique = pd.Series(text.dropna().unique(), dtype="string")
    found = pd.Series(pd.NA, index=unique.index, dtype="string")
    for length in lengths:
        found = found.fillna(unique.str[:length].map(mapping).astype("string"))
    lookup = dict(zip(unique.to_numpy(), found.to_numpy(), strict=True))
    return text.map(lookup, na_action="ignore").astype("string")


def split_diagnoses(text: pd.Series) -> pd.DataFrame:
    """Every code of a ``Der_Diagnosis_All``-style field, one row per code, in order.

    Args:
        text: The field, one value per spell.

    Returns:
        Columns ``row`` (the spell's position in ``text``, 0, 1, ...), ``position`` (0, 1,
        ... within the spell) and ``code`` (the code as written, spaces removed; empty
        pieces dropped), sorted by row and position.
    """
    values = pa.array(
        pd.Series(text).astype("string").to_numpy(dtype=object, na_value=None), type=pa.string()
    )
    lists = pc.split_pattern_regex(values, CODE_SEPARATORS)
    row = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    code = pc.replace_substring_regex(pc.list_flatten(lists), r"\s+", "")
    keep = pc.greater(pc.utf8_length(code), 0).to_numpy(zero_copy_only=False)
    row = row[keep]
    code = pd.array(code.filter(pa.array(keep)).to_numpy(zero_copy_only=False), dtype="string")
    return pd.DataFrame({"row": row, "position": _positions(row), "code": code})


def _positions(row: np.ndarray) -> np.ndarray:
    """0, 1, 2 ... within each run of equal values of a sorted array."""
    if row.size == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    return np.arange(row.size) - np.repeat(start, np.diff(np.r_[start, row.size]))


def join_codes(
    row: np.ndarray, code: np.ndarray, spells: int, separator: str = DIAGNOSIS_SEPARATOR
) -> pd.Series:
    """Codes joined by ``separator`` per spell (``row`` sorted ascending); missing where a spell has none."""
    counts = np.bincount(row, minlength=spells)
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int64), type=pa.int64())
    lists = pa.LargeListArray.from_arrays(offsets, pa.array(code, type=pa.string(), from_pandas=True))
    joined = pd.Series(pc.binary_join(lists, separator).to_numpy(zero_copy_only=False), dtype="string")
    return joined.mask(counts == 0)


def icd10_coverage(field_name: str, codes: pd.Series) -> FieldCoverage:
    """How many codes of a diagnosis field are recognised ICD-10 codes, naming the others.

    A code is recognised when it has the shape of an ICD-10 code and its 3-character
    category is real. Unrecognised codes are listed as written, most frequent first, with
    the system they look like when it is not ICD-10 (an OPCS-4 procedure code whose
    category is no ICD-10 category, a Read v2 code, a SNOMED CT identifier).

    Args:
        field_name: The national field (for the report).
        codes: One value per code occurrence (missing values are not counted).
    """
    present = codes.dropna().astype("string")
    recognised = is_icd10_category(normalise_icd10(present))
    return field_coverage(
        SUS_APC.name,
        field_name,
        CATEGORY_LIST,
        int(present.size),
        int(recognised.sum()),
        present[~recognised.to_numpy()].value_counts(),
        "icd10",
        masked=False,
    )


def _text(values: pd.Series | np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Text as the generator writes it (pandas ``str``), missing values kept, by position."""
    return pd.array(pd.Series(values).astype("string").to_numpy(dtype=object, na_value=None), dtype="str")


def _diagnosis_columns(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, list[FieldCoverage]]:
    """The contract's ``primary_diagnosis`` and ``diagnoses`` of each spell, and their coverage.

    Works on codes factorised to integers (millions of codes at a million people).
    """
    spells = len(frame)
    supplied = frame[ALL_DIAGNOSES].notna().to_numpy()
    every = split_diagnoses(frame[ALL_DIAGNOSES])
    row = every["row"].to_numpy()
    first = pd.Series(pd.NA, index=range(spells), dtype="string")
    at_start = (every["position"] == 0).to_numpy()
    first.iloc[row[at_start]] = every["code"].to_numpy()[at_start]
    primary_raw = frame[PRIMARY_DIAGNOSIS].reset_index(drop=True).str.replace(r"\s+", "", regex=True)
    # Without a separate primary field, the first code of Der_Diagnosis_All is the primary (SUS order).
    primary_raw = primary_raw.replace("", pd.NA).fillna(first)
    primary = normalise_icd10(primary_raw)
    primary = primary.where(is_icd10_category(primary), pd.NA)

    code_id, written = pd.factorize(every["code"])
    normalised = normalise_icd10(pd.Series(written, dtype="string"))
    recognised = is_icd10_category(normalised).to_numpy()
    # Coverage counts each distinct code of a spell once (episodes repeat codes).
    first_in_spell = ~pd.Series(row * len(written) + code_id).duplicated().to_numpy()
    coverage = [
        icd10_coverage(PRIMARY_DIAGNOSIS, primary_raw),
        icd10_coverage(ALL_DIAGNOSES, pd.Series(written, dtype="string").take(code_id[first_in_spell])),
    ]
    kept = recognised[code_id]
    norm_id, norm_values = pd.factorize(normalised)
    primary_id = pd.Index(norm_values).get_indexer(primary.to_numpy(dtype=object, na_value=None))
    head = supplied & primary.notna().to_numpy()
    new_values = pd.Index(norm_values)
    # Primaries not among any Der_Diagnosis_All code get ids of their own.
    missing = head & (primary_id < 0)
    if missing.any():
        extra, extra_values = pd.factorize(primary[missing])
        primary_id[missing] = extra + len(new_values)
        new_values = new_values.append(pd.Index(extra_values))
    rows = np.r_[np.flatnonzero(head), row[kept]]
    order_in_spell = np.r_[np.full(int(head.sum()), -1), every["position"].to_numpy()[kept]]
    ids = np.r_[primary_id[head], norm_id[code_id[kept]]]
    order = np.lexsort((order_in_spell, rows))
    rows, ids = rows[order], ids[order]
    unique = ~pd.Series(rows * (len(new_values) + 1) + ids).duplicated().to_numpy()
    codes = np.asarray(new_values, dtype=object)[ids[unique]]
    diagnoses = join_codes(rows[unique], codes, spells)
    return primary, diagnoses, coverage


def adapt(frame: pd.DataFrame) -> SourceOutput:
    """SUS+ APC spells (national field names, text) -> the contract table ``apc_spells``.

    Raises:
        ContractError: Naming the dataset, the field, the number of rows and example spell
            IDs: an empty spell ID (examples are then person pseudonyms), person, admission
            date or admission method; a date that does not parse.
    """
    source = SUS_APC
    require_values(source, frame, SPELL_ID, frame[PERSON_ID])
    ids = frame[SPELL_ID]
    for name in (PERSON_ID, ADMISSION_DATE, ADMISSION_METHOD):
        require_values(source, frame, name, ids)
    admission = parse_dates(source, frame, ADMISSION_DATE, ids)
    discharge = parse_dates(source, frame, DISCHARGE_DATE, ids)

    destination_codes = frame[DISCHARGE_DESTINATION].str.strip().replace("", pd.NA)
    destination, destination_coverage = map_codes(
        source, DISCHARGE_DESTINATION, destination_codes, code_map(DESTINATION_LIST), DESTINATION_LIST, ""
    )
    destination = destination.replace("", pd.NA)  # 98: spell not finished, no destination
    primary, diagnoses, diagnosis_coverage = _diagnosis_columns(frame)

    spells = pd.DataFrame(
        {
            "spell_id": _text(frame[SPELL_ID]),
            "person_id": _text(frame[PERSON_ID]),
            "admission_date": admission.to_numpy(),
            "discharge_date": discharge.to_numpy(),
            "admission_method": _text(frame[ADMISSION_METHOD]),
            "primary_diagnosis": _text(primary),
            "diagnoses": _text(diagnoses),
            "discharge_destination": _text(destination),
            "discharge_method": _text(frame[DISCHARGE_METHOD]),
        }
    )
    spells = spells[list(CONTRACT["apc_spells"].column_names)]
    coverage = [destination_coverage, *diagnosis_coverage]
    return SourceOutput(tables={"apc_spells": spells}, coverage=coverage, notes=describe({}, coverage))


def describe(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The adapter's notes from the coverage of ``Der_Diagnosis_All`` (whole file or summed batches)."""
    (all_codes,) = [c for c in coverage if c.field == ALL_DIAGNOSES]
    if all_codes.rows <= all_codes.mapped:
        return []
    return [
        f"{all_codes.rows - all_codes.mapped} of {all_codes.rows} SUS APC diagnosis codes were not "
        "recognised ICD-10 codes and were left out of apc_spells.diagnoses "
        f"({all_codes.wrong_system} from another coding system)."
    ]


# -- contract tables back to the national format (synthetic writer, round-trip tests) -------

_DESTINATION_CODES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "usual_residence": (("19",), (1.0,)),
    "care_home": (("55", "56", "54", "65", "85"), (0.4, 0.4, 0.05, 0.05, 0.1)),
    "other_hospital": (("51", "49", "50", "53", "87"), (0.85, 0.02, 0.03, 0.05, 0.05)),
    "hospice": (("88",), (1.0,)),
    "temporary_residence": (("29", "37", "40", "42"), (0.9, 0.02, 0.04, 0.04)),
    "died": (("79",), (1.0,)),
    "not_known": (("99",), (1.0,)),
}
"""Contract destination -> the SUS codes written for it, and how often (every code maps back)."""
NOT_FINISHED = "98"

MARKED = {"G30": "dagger", "F00": "asterisk", "F02": "asterisk", "G46": "asterisk", "D63": "asterisk"}
"""Categories written with their dagger or asterisk mark (Alzheimer's G30† with F00*, ...)."""
NOISE_SHARE = 0.015
"""Share of spells with secondary diagnoses that get one code that is not ICD-10 or is unknown."""
NOISE_CODES = ("E491", "U051", "Q081", "G30..", "H33..", "R66X", "J23X")
"""OPCS-4 procedures (bronchoscopy, CT head, vaginal hysterectomy), Read v2 codes, unknown categories."""
STYLES = ("warehouse", "dotted", "plain")
STYLE_SHARES = (0.6, 0.25, 0.15)


def _render(codes: pd.Series, style: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Normalised codes written as one provider or another writes them."""
    codes = codes.astype(str)
    category, rest = codes.str[:3], codes.str[3:]
    mark = category.map(MARKED)
    warehouse = (category + rest.where(rest != "", "X")).where(
        mark.isna(), category + rest.where(rest != "", "X") + np.where(mark == "dagger", "D", "A")
    )
    warehouse = warehouse.where(~((rng.random(len(codes)) < 0.05) & (rest.str.len() == 1)), warehouse + "-")
    dotted = category + np.where(rest != "", "." + rest, "")
    dotted = dotted.where(mark.isna(), dotted + np.where(mark == "dagger", "\u2020", "*"))
    plain = codes.where(rng.random(len(codes)) >= 0.01, codes.str.lower())
    out = np.select([style == "warehouse", style == "dotted"], [warehouse, dotted], plain)
    return pd.Series(out, index=codes.index, dtype=object)


def _all_diagnoses(spells: pd.DataFrame, style: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """``Der_Diagnosis_All`` of each spell, with duplicate episodes and a little noise."""
    text = spells["diagnoses"].astype("string")
    long = split_diagnoses(text)
    long["style"] = style[long["row"].to_numpy()]
    long["code"] = _render(long["code"], long["style"], rng).to_numpy()
    # A sprinkling of codes that are not ICD-10 (or unknown), never as the primary diagnosis.
    counts = long.groupby("row").size()
    candidates = counts.index[counts.to_numpy() > 1].to_numpy()
    noisy = candidates[rng.random(candidates.size) < NOISE_SHARE]
    noise = pd.DataFrame(
        {
            "row": noisy,
            "position": rng.integers(1, counts.loc[noisy].to_numpy() + 1) - 0.5,
            "code": np.asarray(NOISE_CODES, dtype=object)[rng.integers(0, len(NOISE_CODES), noisy.size)],
            "style": style[noisy],
        }
    )
    # Spells of several episodes repeat codes (primary again in the second episode).
    repeated = counts.index[rng.random(counts.size) < 0.2].to_numpy()
    again = long[long["row"].isin(repeated) & (long["position"] == 0)].copy()
    again["position"] = 10_000
    long = pd.concat([long, noise, again], ignore_index=True).sort_values(["row", "position"], kind="stable")
    episode = (long["position"] >= 10_000).to_numpy()
    first_in_row = (long.groupby("row", sort=False).cumcount() == 0).to_numpy()
    first_in_episode = (long.groupby([long["row"], episode], sort=False).cumcount() == 0).to_numpy()
    style_of = long["style"].to_numpy()
    # Warehouse: "||E119 ,E780 ||I801" (episodes after "||", codes after " ,"); else one separator.
    warehouse_prefix = np.where(first_in_episode, np.where(episode, " ||", "||"), " ,")
    other_prefix = np.where(first_in_row, "", np.where(style_of == "dotted", ",", ";"))
    prefix = np.where(style_of == "warehouse", warehouse_prefix, other_prefix)
    piece = prefix.astype(object) + long["code"].astype(str).to_numpy().astype(object)
    return join_codes(long["row"].to_numpy(), piece, len(spells), separator="")


def _dates_text(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%d").astype(object).where(values.notna(), None)


def to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``apc_spells`` written as a SUS+ APC extract (national field names, text).

    ICD-10 codes are written in the forms real extracts use, varying by spell: the
    warehouse form (``||I500 ,I10X ,E119``, with a second episode repeating the primary on
    a fifth of spells, ``D``/``A`` dagger/asterisk marks and the odd ``-`` filler), dotted
    (``I50.0,I10,E11.9``, with ``†``/``*``) or plain (``I500;I10;E119``, now and then in
    lower case). About 1.5% of spells with secondary diagnoses carry one code that is not a
    recognised ICD-10 code (an OPCS-4 or Read code, an unknown category) among the secondary
    diagnoses, which the adapter drops. Destinations are drawn from the SUS codes of each
    contract value; a missing destination is written ``98`` (not finished).

    Round trip: :func:`adapt` gives back ``apc_spells`` on every column, except where the
    contract table has ``diagnoses`` but no ``primary_diagnosis`` (the first of
    ``diagnoses`` then becomes the primary) or codes whose category is not a real ICD-10
    category (dropped).
    """
    spells = tables["apc_spells"].reset_index(drop=True)
    n = len(spells)
    style = np.asarray(STYLES, dtype=object)[rng.choice(len(STYLES), size=n, p=STYLE_SHARES)]
    primary = spells["primary_diagnosis"].astype("string")
    has_primary = primary.notna().to_numpy()
    primary_text = pd.Series([None] * n, dtype=object)
    primary_text[has_primary] = _render(
        primary[has_primary].reset_index(drop=True), pd.Series(style[has_primary]), rng
    ).to_numpy()
    destination = pd.Series([NOT_FINISHED] * n, dtype=object)
    contract_destination = spells["discharge_destination"].astype("string")
    for value, (codes, shares) in _DESTINATION_CODES.items():
        rows = (contract_destination == value).fillna(False).to_numpy()
        destination[rows] = np.asarray(codes, dtype=object)[
            rng.choice(len(codes), size=int(rows.sum()), p=shares)
        ]
    raw = pd.DataFrame(
        {
            SPELL_ID: spells["spell_id"].astype(object),
            PERSON_ID: spells["person_id"].astype(object),
            ADMISSION_DATE: _dates_text(spells["admission_date"]),
            DISCHARGE_DATE: _dates_text(spells["discharge_date"]),
            ADMISSION_METHOD: spells["admission_method"].astype(object),
            DISCHARGE_DESTINATION: destination,
            DISCHARGE_METHOD: spells["discharge_method"].astype(object),
            PRIMARY_DIAGNOSIS: primary_text,
            ALL_DIAGNOSES: _all_diagnoses(spells, style, rng),
        }
    )
    return raw.astype(object).where(raw.notna(), None)


SUS_APC = register_source(
    Source(
        name="sus_apc",
        title="SUS+ Admitted Patient Care spells",
        file="sus_apc_spells",
        fields=(
            RawField(SPELL_ID, "Hospital provider spell identifier -> apc_spells.spell_id."),
            RawField(
                PERSON_ID, "Pseudonymised NHS number -> apc_spells.person_id (same pseudonym as GP data)."
            ),
            RawField(ADMISSION_DATE, "Start of the spell (ISO date) -> admission_date."),
            RawField(DISCHARGE_DATE, "End of the spell, empty if not discharged -> discharge_date."),
            RawField(
                ADMISSION_METHOD, "ADMISSION METHOD code (11-13, 21-28, 2A-2D, 31-32, 81-83), passed through."
            ),
            RawField(
                DISCHARGE_DESTINATION,
                "DISCHARGE DESTINATION CODE (19, 29, 51, 54-56, 79, 88, 98, 99 ...) -> discharge_destination.",
                coded="NHS Data Dictionary",
            ),
            RawField(DISCHARGE_METHOD, "DISCHARGE METHOD code (1-5, 8, 9), passed through."),
            RawField(
                PRIMARY_DIAGNOSIS,
                "Primary diagnosis (ICD-10, any common form) -> primary_diagnosis, normalised; "
                "when absent, the first code of Der_Diagnosis_All.",
                required=False,
                coded="ICD-10",
            ),
            RawField(
                ALL_DIAGNOSES,
                "Every diagnosis of the spell, primary first ('||I500 ,I10X', 'I50.0,I10', ...) "
                "-> diagnoses, normalised, recognised ICD-10 codes only; empty: not supplied.",
                required=False,
                coded="ICD-10",
            ),
        ),
        writes=("apc_spells",),
        adapt=adapt,
        to_national=to_national,
        batching=ROWS,  # one row per spell, each adapted on its own
        person=PERSON_ID,
        describe=describe,
    )
)
