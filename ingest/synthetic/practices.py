"""GP practices, the neighbourhoods (one MDT each) they form, and who registers where.

Within a district, LSOAs are laid out in MSOA order (MSOA numbers run roughly
across the district) and each practice serves a stretch of that line, its home
cluster. People register with the practice whose stretch holds their home,
sometimes with a neighbouring one, so registration is near home and stays
within the district.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskstrat.ingest.synthetic.settings import SyntheticSettings

_NAME_WORDS = (
    "Park", "Church Road", "High Street", "Victoria", "Riverside", "Oak Tree", "Hill Top", "Meadow",
    "Station Road", "Green Lane", "Castle", "Priory", "Broadway", "Willow", "Elm", "Canal Side",
    "Market", "Queens", "Kings", "Brook", "Beacon", "Orchard", "Cedar", "Chapel", "Manor", "Forge",
)  # fmt: skip
_NAME_SUFFIXES = ("Surgery", "Medical Centre", "Health Centre", "Medical Practice", "Family Practice")


def practices_in_district(district_people: int, settings: SyntheticSettings) -> int:
    """How many practices a district with ``district_people`` generated residents gets."""
    return max(settings.min_practices_per_lad, round(district_people / settings.mean_list_size))


def neighbourhoods_in_district(district_people: int, settings: SyntheticSettings) -> int:
    """How many neighbourhoods (MDTs) a district gets: at least one."""
    return max(1, round(district_people / settings.neighbourhood_size))


def lsoa_line(lsoas: pd.DataFrame) -> pd.DataFrame:
    """Each LSOA's stretch [start, end) of its district's line, in population shares."""
    ordered = lsoas.sort_values(["lad_code", "msoa_name", "lsoa_code"])
    share = ordered["population"] / ordered.groupby("lad_code")["population"].transform("sum")
    end = share.groupby(ordered["lad_code"]).cumsum()
    line = pd.DataFrame({"line_start": end - share, "line_end": end}, index=ordered.index)
    return line.reindex(lsoas.index)


def build_practices(
    lsoas: pd.DataFrame, residents_per_lad: pd.Series, settings: SyntheticSettings, rng: np.random.Generator
) -> pd.DataFrame:
    """Practices of every district with their stretch of the line and their neighbourhood.

    Args:
        lsoas: Footprint LSOAs.
        residents_per_lad: Generated people per LAD code.
        settings: Practice and neighbourhood sizes.
        rng: Random generator.

    Returns:
        One row per practice: ``practice_code``, ``practice_name``, ``neighbourhood``,
        ``lad_code``, ``lad_name``, ``line_start``, ``line_end``.
    """
    lad_names = lsoas.drop_duplicates("lad_code").set_index("lad_code")["lad_name"]
    frames = []
    for lad_code in sorted(residents_per_lad.index):
        district_people = int(residents_per_lad[lad_code])
        n_practices = practices_in_district(district_people, settings)
        sizes = np.clip(rng.lognormal(np.log(settings.mean_list_size) - 0.18, 0.6, n_practices), 2000, 25000)
        end = np.cumsum(sizes) / sizes.sum()
        middle = end - sizes / sizes.sum() / 2
        n_neighbourhoods = min(n_practices, neighbourhoods_in_district(district_people, settings))
        neighbourhood = np.minimum((middle * n_neighbourhoods).astype(int), n_neighbourhoods - 1)
        frames.append(
            pd.DataFrame(
                {
                    "lad_code": lad_code,
                    "lad_name": lad_names[lad_code],
                    "neighbourhood": [f"{lad_names[lad_code]} Neighbourhood {k + 1}" for k in neighbourhood],
                    "line_start": end - sizes / sizes.sum(),
                    "line_end": end,
                }
            )
        )
    practices = pd.concat(frames, ignore_index=True)
    practices.insert(0, "practice_code", _ods_codes(len(practices), rng))
    practices.insert(1, "practice_name", _practice_names(practices["lad_name"].to_numpy(), rng))
    return practices


def _ods_codes(count: int, rng: np.random.Generator) -> list[str]:
    numbers = rng.choice(np.arange(80000, 99999), size=count, replace=False)
    return [f"M{n:05d}" for n in numbers]


def _practice_names(lad_names: np.ndarray, rng: np.random.Generator) -> list[str]:
    words = rng.choice(len(_NAME_WORDS), size=lad_names.size)
    suffixes = rng.choice(len(_NAME_SUFFIXES), size=lad_names.size)
    names = [
        f"{_NAME_WORDS[w]} {_NAME_SUFFIXES[s]}, {lad}"
        for w, s, lad in zip(words, suffixes, lad_names, strict=True)
    ]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def assign_practices(
    lsoa_index: np.ndarray, lsoas: pd.DataFrame, practices: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    """Register each person with a practice near home, in their own district.

    Args:
        lsoa_index: Each person's row in ``lsoas``.
        lsoas: Footprint LSOAs (with ``lad_code``).
        practices: Output of :func:`build_practices`.
        rng: Random generator.

    Returns:
        Each person's row in ``practices``.
    """
    line = lsoa_line(lsoas)
    start = line["line_start"].to_numpy()[lsoa_index]
    width = (line["line_end"] - line["line_start"]).to_numpy()[lsoa_index]
    lad = lsoas["lad_code"].to_numpy()[lsoa_index]
    result = np.empty(lsoa_index.size, dtype=np.int64)
    for lad_code, rows in practices.groupby("lad_code").groups.items():
        members = lad == lad_code
        rows = np.asarray(rows)
        ends = practices.loc[rows, "line_end"].to_numpy()
        spread = 0.25 / len(rows)
        position = (
            start[members] + rng.random(members.sum()) * width[members] + rng.normal(0, spread, members.sum())
        )
        position = np.clip(position, 0, 1 - 1e-9)
        result[members] = rows[np.minimum(np.searchsorted(ends, position, side="right"), len(rows) - 1)]
    return result
