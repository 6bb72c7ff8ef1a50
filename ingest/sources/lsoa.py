"""LSOA 2011 or 2021 of residence, onto the LSOA 2011 that IMD 2019 is published on.

GP registration extracts carry the LSOA of residence as 2011 or, increasingly,
2021 codes. Most 2021 codes are the 2011 code unchanged; the rest (LSOAs split
or merged in 2021) are mapped through the ONS best-fit lookup shipped as the
``lsoa2021_lsoa2011`` code list. A code that is neither a known LSOA 2011 code
nor in that list is left as it is and counted in the coverage; the validation
gate's ``lsoa_in_imd_lookup`` check then reports it.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from riskstrat.ingest.codelists import code_map
from riskstrat.ingest.reference import imd_lookup
from riskstrat.ingest.sources.base import FieldCoverage, field_coverage

LOOKUP = "lsoa2021_lsoa2011"
"""The shipped 2021 -> 2011 best-fit list (only 2021 codes that are new in 2021)."""
CODELIST_LABEL = "IMD 2019 LSOA 2011 + lsoa2021_lsoa2011"
"""How the coverage record names what the codes were checked against."""


@cache
def lsoa2011_codes() -> frozenset[str]:
    """Every English LSOA 2011 code (the IMD 2019 lookup's)."""
    return frozenset(imd_lookup()["lsoa_code"])


@cache
def lsoa2021_to_2011() -> dict[str, str]:
    """New-in-2021 LSOA code -> its best-fit LSOA 2011 code."""
    return code_map(LOOKUP)


def to_lsoa2011(
    codes: pd.Series, source: str = "gp_registrations", field: str = "LSOA"
) -> tuple[pd.Series, FieldCoverage]:
    """Map LSOA codes of residence (2011 or 2021) onto LSOA 2011.

    LSOA 2011 codes pass through; 2021 codes new in 2021 become their best-fit
    2011 code. Anything else (a 2021 LSOA made by a split that no 2011 LSOA
    best-fits, a Welsh or mistyped code) is left as it is and reported as
    unmapped, most frequent first.

    Args:
        codes: LSOA codes as text (surrounding spaces and case are tidied; missing stays missing).
        source: The source name for the coverage record.
        field: The national field name for the coverage record.

    Returns:
        The LSOA 2011 codes (unknown codes unchanged) and the field's coverage.
    """
    text = codes.astype("string").str.strip().str.upper()
    text = text.mask(text == "")
    # Map on the distinct codes: a million people live in a few thousand LSOAs.
    distinct = pd.Series(text.dropna().unique(), dtype="string")
    known = set(lsoa2011_codes())
    lookup = lsoa2021_to_2011()
    as2011 = distinct.map(lambda code: code if code in known else lookup.get(code)).astype("string")
    mapping = dict(zip(distinct.to_numpy(), as2011.to_numpy(), strict=True))
    mapped = text.map(mapping, na_action="ignore").astype("string")
    present = text.notna()
    missed = present & mapped.isna()
    coverage = field_coverage(
        source,
        field,
        CODELIST_LABEL,
        int(present.sum()),
        int((present & mapped.notna()).sum()),
        text[missed].value_counts(),
        None,
        masked=False,
    )
    return mapped.fillna(text), coverage


def to_lsoa2021(codes: pd.Series, share: float, rng: np.random.Generator) -> pd.Series:
    """Write a share of LSOA 2011 codes as their 2021 code, where the 2021 code differs.

    Only 2011 codes that :func:`to_lsoa2011` maps back to themselves are rewritten
    (the first 2011 LSOA of a merge), so the round trip is exact.

    Args:
        codes: LSOA 2011 codes.
        share: Share of the rewritable codes to rewrite.
        rng: Random generator.

    Returns:
        The codes, some as their 2021 equivalent.
    """
    back = {v: k for k, v in lsoa2021_to_2011().items()}
    new = codes.astype("string").map(back).astype("string")
    chosen = new.notna().to_numpy() & (rng.random(len(codes)) < share)
    return codes.astype("string").where(~chosen, new)
