"""Which coding system a code looks like, so a code from the wrong system is named as such.

A SNOMED CT identifier is all digits (6 to 18) ending in a Verhoeff check digit,
with a partition identifier before it; Read v2 and CTV3 codes are five
characters, padded with dots; ICD-10 codes are a letter and two digits with
optional further characters; BNF codes start with a two-digit chapter. The
shapes overlap in places (an OPCS-4 procedure code such as ``W401`` has the shape of
an ICD-10 code), so :func:`code_system` says what a code looks like, and
adapters report it only for codes their list did not recognise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_VERHOEFF_D = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ]
)
_VERHOEFF_P = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ]
)
SNOMED_PARTITIONS = frozenset({"00", "01", "02", "10", "11", "12"})
"""Partition identifiers of concepts, descriptions and relationships (short and extension IDs)."""

SYSTEM_NAMES = {
    "snomed": "SNOMED CT",
    "read": "Read v2 / CTV3",
    "icd10": "ICD-10",
    "opcs4": "OPCS-4",
    "bnf": "BNF",
}
"""Plain names of the systems :func:`code_system` recognises."""

_READ = r"^[A-Za-z0-9][A-Za-z0-9.]{4}$"
_ICD10 = r"^[A-Z][0-9]{2}(\.?[0-9X]{1,2})?[A-Z+*\u2020-]?$"
_OPCS4 = r"^[A-Z][0-9]{2}\.?[0-9]$"
_BNF = r"^[0-2][0-9](0[0-9]|1[0-9])[0-9A-Z]{0,11}$"


def verhoeff_valid(digits: str) -> bool:
    """Whether a string of digits ends in a correct Verhoeff check digit (SNOMED CT, dm+d IDs)."""
    check = 0
    for i, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check, _VERHOEFF_P[i % 8, int(char)]]
    return check == 0


def is_snomed_id(code: str) -> bool:
    """Whether ``code`` is a well-formed SNOMED CT identifier (digits, partition, Verhoeff check)."""
    return (
        code.isascii()
        and code.isdigit()
        and 6 <= len(code) <= 18
        and code[0] != "0"
        and code[-3:-1] in SNOMED_PARTITIONS
        and verhoeff_valid(code)
    )


def code_system(codes: pd.Series) -> list[str]:
    """What coding system each code looks like: ``snomed``, ``read``, ``icd10``, ``opcs4``, ``bnf`` or "".

    OPCS-4 codes share their shape with four-character ICD-10 codes; a code is
    called ``opcs4`` only when its first three characters are not an ICD-10
    category in the shipped ``icd10_categories`` list (when that list is shipped).

    Args:
        codes: Codes as text (missing values give "").

    Returns:
        One name per code, in order.
    """
    text = codes.astype("string").fillna("").str.strip()
    upper = text.str.upper()
    categories = _icd10_categories()
    result: list[str] = []
    read = text.str.match(_READ).fillna(False).to_numpy()
    icd = upper.str.match(_ICD10).fillna(False).to_numpy()
    opcs = upper.str.match(_OPCS4).fillna(False).to_numpy()
    bnf = text.str.match(_BNF).fillna(False).to_numpy()
    for i, code in enumerate(text.to_numpy()):
        if not code:
            result.append("")
        elif is_snomed_id(code):
            result.append("snomed")
        elif opcs[i] and categories and code[:3].upper() not in categories:
            result.append("opcs4")
        elif icd[i]:
            result.append("icd10")
        elif bnf[i]:
            result.append("bnf")
        elif read[i] and ("." in code or any(c.islower() for c in code)):
            result.append("read")
        else:
            result.append("")
    return result


def _icd10_categories() -> frozenset[str]:
    """Three-character ICD-10 categories, when a shipped list holds them (else empty)."""
    from riskstrat.ingest.codelists import manifest

    if "icd10_categories" not in manifest():
        return frozenset()
    from riskstrat.ingest.codelists import codelist

    return frozenset(codelist("icd10_categories")["code"])
