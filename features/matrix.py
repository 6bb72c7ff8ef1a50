"""Assemble the feature matrix at an as-of date, stack training tables, split people.

The feature matrix has one row per person in the cohort at T: keys ``person_id``
and ``as_of``, the features in dictionary order, the outcomes (training tables
only), then the person attributes the fairness audit and worklists use.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskstrat.errors import RiskstratError
from riskstrat.features.acute import acute_features
from riskstrat.features.common import Tables
from riskstrat.features.community import community_features
from riskstrat.features.demographics import demographic_features
from riskstrat.features.dictionary import FeatureSpec, feature_dictionary
from riskstrat.features.hospital import hospital_features, hospital_ltc_not_on_gp_record
from riskstrat.features.outcomes import check_outcome_window, cohort_at, outcome_columns, outcomes_at
from riskstrat.features.primary import frailty_columns, primary_features
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.features.social_care import SOCIAL_CARE_FEATURES, SOCIAL_CARE_TABLE, social_care_features
from riskstrat.frames import Column, FrameSchema, Kind

KEY_COLUMNS: tuple[str, ...] = ("person_id", "as_of")
TRAINING_FEATURE_TYPE = "float32"
"""Type of the features in a training table: what LightGBM bins them from anyway, and half of
float64's memory (the training table of the largest ICBs holds about 10 million person-time rows).
Counts are exact in it up to 16,777,216; scores keep 7 significant digits. The weekly matrix keeps
float64 (its readers show the values): a split threshold lies midway between two training values, so
the model treats a weekly value as its float32 rounding unless it lies within that rounding of a threshold."""
PERSON_ATTRIBUTES: tuple[str, ...] = ("ethnic_group", "practice_code", "lsoa_code", "age_band", "sex")
"""Who each person is, beyond the features: text columns the fairness audit groups by and the
worklists place people with (``imd_quintile``, also grouped by, is a feature)."""

FEATURE_MATRIX = FrameSchema(
    name="feature matrix",
    columns=(
        Column("person_id", Kind.TEXT),
        Column("as_of", Kind.DATE),
        *(Column(name, Kind.TEXT) for name in PERSON_ATTRIBUTES),
    ),
    key=KEY_COLUMNS,
    hint="Build it with riskstrat.features.matrix.build_feature_matrix: one row per person and as-of date.",
)
"""One row per person and as-of date: keys, features, outcomes in a training table, then the person
attributes (:func:`feature_matrix_schema` adds the features and outcomes of the settings in use)."""


def feature_matrix_schema(features: Iterable[str], outcomes: Iterable[str] = ()) -> FrameSchema:
    """:data:`FEATURE_MATRIX` with the feature columns (numbers, NaN where missing) and outcome columns (0/1).

    Args:
        features: The feature names of the settings in use (``features.dictionary.feature_names``).
        outcomes: The outcome columns of a training table (none for scoring).
    """
    # Social care columns come from an optional table: a matrix without them is whole.
    return FEATURE_MATRIX.with_columns(
        *(
            Column(name, Kind.NUMBER, nullable=True, required=name not in SOCIAL_CARE_FEATURES)
            for name in features
        ),
        *(Column(name, Kind.INTEGER) for name in outcomes),
    )


def feature_sources(
    tables: Tables,
    as_of: date,
    settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> tuple[ir.Table, list[ir.Table]]:
    """The parts :func:`feature_matrix_expr` joins: the cohort at ``as_of`` and each source's aggregates.

    ``county_of_district`` (two-tier district -> county, ``social_care`` in
    ``configs/sources.yaml``) places people in their social-services authority.

    Returns:
        The cohort with its demographic features and person attributes (one row per
        person), and the per-person aggregates of each source (primary, community,
        acute), each with a row only for people with events, then the social care
        features when ``tables`` has ``social_care_events`` and the outcomes if asked
        (each a row per person in the cohort).
    """
    people = cohort_at(tables, as_of, settings.cohort)
    aggregates = [
        *primary_features(tables, as_of, settings),
        *community_features(tables, as_of, settings),
        *acute_features(tables, as_of, settings),
        *hospital_features(tables, as_of, settings),
    ]
    if SOCIAL_CARE_TABLE in tables:
        aggregates.append(social_care_features(people, tables, as_of, county_of_district))
    if outcome_settings is not None:
        aggregates.append(outcomes_at(people, tables, as_of, outcome_settings))
    return demographic_features(people, as_of, settings), aggregates


def feature_matrix_expr(
    tables: Tables,
    as_of: date,
    settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> ir.Table:
    """The feature matrix at ``as_of`` as one Ibis expression (nothing runs yet).

    Each source table is scanned once and aggregated once per person (windowed
    counts as filtered counts) and left-joined onto the cohort at T.

    Args:
        tables: Input tables by contract name.
        as_of: The as-of date T.
        settings: Feature settings.
        outcome_settings: When given, outcome columns over (T, T + horizon] are added.
        county_of_district: Two-tier district -> county, for the social care features.

    Returns:
        One row per person in the cohort: ``person_id``, features, outcomes (if asked), person attributes.
    """
    dictionary = feature_dictionary(settings)
    matrix, aggregates = feature_sources(tables, as_of, settings, outcome_settings, county_of_district)
    # One chain of left joins and one projection: Ibis compiles that several times
    # faster than a join-then-drop per source, and the SQL is flat.
    joined = matrix
    for number, aggregate in enumerate(aggregates):
        key = f"_person_id_{number}"
        keyed = aggregate.rename({key: "person_id"})
        joined = joined.left_join(keyed, matrix.person_id == keyed[key])
    # People without events have no aggregate row: their counts are 0, not missing.
    values = {
        name: joined[name].fill_null(0)
        if (name in dictionary and dictionary[name].missing == "zero") or name.startswith("_")
        else joined[name]
        for name in joined.columns
        if not name.startswith("_person_id_")
    }
    values.update(
        frailty_columns(
            values["_efi_coded_deficits"],
            values["_polypharmacy_coded"],
            values["bnf_sections_365d"],
            settings,
        )
    )
    values["hospital_ltc_not_on_gp_record"] = hospital_ltc_not_on_gp_record(
        values["_hospital_conditions"], values["_gp_conditions"]
    )
    features = matrix_features(dictionary, tables)
    columns = [*features, *PERSON_ATTRIBUTES]
    if outcome_settings is not None:
        columns = [*features, *outcome_columns(outcome_settings), *PERSON_ATTRIBUTES]
    return joined.select("person_id", **{name: values[name] for name in columns})


def matrix_features(names: Iterable[str], tables: Tables) -> list[str]:
    """The features of ``names`` a matrix built from ``tables`` holds, in order.

    The social care features only when ``tables`` has ``social_care_events`` (an
    optional table): without it, the matrix has no social care columns.
    """
    return [name for name in names if SOCIAL_CARE_TABLE in tables or name not in SOCIAL_CARE_FEATURES]


def trained_features(names: Iterable[str], columns: Iterable[str]) -> list[str]:
    """The features of ``names`` a model trains on, given the columns of its training table, in order.

    Every feature but the social care ones, which only when the table has them (an
    extract without ``social_care_events`` gives a matrix without them).
    """
    present = set(columns)
    return [name for name in names if name in present or name not in SOCIAL_CARE_FEATURES]


def trained_dictionary(settings: FeatureSettings, columns: Iterable[str]) -> dict[str, FeatureSpec]:
    """The feature dictionary of the features a model trains on (:func:`trained_features`), in order."""
    every = feature_dictionary(settings)
    return {name: every[name] for name in trained_features(every, columns)}


def build_feature_table(
    tables: Tables,
    as_of: date,
    settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    extract_date: date | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> pa.Table:
    """Build and run the feature matrix at ``as_of`` as an Arrow table; see :func:`feature_matrix_expr`.

    Args:
        tables: Input tables by contract name, all on one backend.
        as_of: The as-of date T.
        settings: Feature settings.
        outcome_settings: When given, outcome columns are added (a training table).
        extract_date: When given with outcomes, an outcome window past it is refused.
        county_of_district: Two-tier district -> county, for the social care features.

    Returns:
        The feature matrix in its stored shape: ``person_id`` and person attributes strings,
        ``as_of`` date32, features float64 (float32 in a training table; null where missing),
        outcomes int64; rows sorted by ``person_id``.
    """
    if outcome_settings is not None:
        check_outcome_window(as_of, outcome_settings, extract_date)
    expr = feature_matrix_expr(tables, as_of, settings, outcome_settings, county_of_district)
    # Typed by the engine (in parallel) and fetched as Arrow. The engine does not sort:
    # sorting the wide rows there costs more than sorting the keys and gathering in
    # Arrow (see sort_by_person).
    shaped = shape_matrix_expr(expr, settings, outcome_settings).to_pyarrow()
    return add_as_of(sort_by_person(shaped), as_of)


def build_feature_matrix(
    tables: Tables,
    as_of: date,
    settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    extract_date: date | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The matrix of :func:`build_feature_table` (same arguments) as pandas.

    Returns:
        Features float64 (NaN where missing), outcomes int64, ``person_id`` and audit
        columns strings, ``as_of`` a ``datetime.date``; rows sorted by ``person_id``.
    """
    # Converted once from Arrow: each copy of a wide matrix costs (fresh memory is slow
    # to touch on a virtual machine).
    table = build_feature_table(tables, as_of, settings, outcome_settings, extract_date, county_of_district)
    return table.to_pandas(date_as_object=True)


def shape_matrix_expr(
    expr: ir.Table,
    settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
) -> ir.Table:
    """The matrix expression in its stored shape, ``as_of`` aside, in no particular row order.

    Features float64 (null where missing), outcomes int64 (0 if null), ``person_id``
    and person attributes strings. A training table (``outcome_settings`` given) holds its
    features as float32 instead (:data:`TRAINING_FEATURE_TYPE`). The engine does not sort:
    :func:`build_feature_table` sorts in Arrow, cheaper than sorting the wide rows in the
    engine, and Spark partitions the matrix by person instead.
    """
    outcomes = outcome_columns(outcome_settings) if outcome_settings is not None else []
    kind = TRAINING_FEATURE_TYPE if outcome_settings is not None else "float64"
    return expr.select(
        person_id=expr.person_id.cast("string"),
        **{name: expr[name].cast(kind) for name in feature_dictionary(settings) if name in expr.columns},
        **{name: expr[name].fill_null(0).cast("int64") for name in outcomes},
        **{name: expr[name].cast("string") for name in PERSON_ATTRIBUTES},
    )


def sort_by_person(table: pa.Table) -> pa.Table:
    """``table`` with its rows sorted by ``person_id`` (as the engines sort strings: by bytes).

    A table already in order (e.g. from a single-threaded engine) is returned as is.
    """
    person = table.column("person_id")
    if table.num_rows < 2 or pc.all(pc.greater_equal(person[1:], person[:-1]), skip_nulls=False).as_py():
        return table
    order = pc.sort_indices(person)
    # The gather mostly waits on fresh memory (slow to touch on a virtual machine): a
    # column per thread overlaps that, and the system allocator hands out fresh pages
    # faster than Arrow's default pool. Measured at 1M people: 0.6 s instead of 1.3 s,
    # below the 0.8 s the engine's sort of the wide rows costs.
    memory = pa.system_memory_pool()
    with ThreadPoolExecutor(max_workers=max(pa.cpu_count(), 1)) as pool:
        columns = list(pool.map(lambda column: pc.take(column, order, memory_pool=memory), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


def add_as_of(table: pa.Table, as_of: date) -> pa.Table:
    """``table`` with ``as_of`` (date32, the same date on every row) inserted after ``person_id``."""
    as_of_column = pa.array(np.full(table.num_rows, np.datetime64(as_of, "D")), pa.date32())
    return table.add_column(1, "as_of", as_of_column)


def stack_matrices(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Stack feature matrices of several as-of dates into person-time rows sorted by person, as_of."""
    stacked = pd.concat(list(frames), ignore_index=True)
    return stacked.sort_values(["person_id", "as_of"], kind="stable").reset_index(drop=True)


def stack_tables(parts: Iterable[pa.Table]) -> pa.Table:
    """Stack feature matrices of several as-of dates (Arrow) into person-time rows sorted by person, as_of.

    The Arrow counterpart of :func:`stack_matrices`, for a training table too large to copy:
    the parts are concatenated without copying, then sorted one column at a time, so at most
    one column is held twice (when nothing else holds the parts: pass a generator).
    """
    stacked = pa.concat_tables(list(parts), promote_options="default")
    if stacked.num_rows < 2:
        return stacked
    order = pc.sort_indices(stacked, sort_keys=[("person_id", "ascending"), ("as_of", "ascending")])
    for position, name in enumerate(stacked.column_names):
        # Replacing each column drops the unsorted one before the next is gathered.
        stacked = stacked.set_column(position, name, pc.take(stacked.column(position), order))
    return stacked


def matrix_frame(table: pa.Table) -> pd.DataFrame:
    """A stored matrix or training table as pandas, with ``as_of`` as ``datetime.date`` values.

    Converted in one pass that releases each Arrow column once it is converted (one block per
    column, so pandas does not copy the columns again into a single block), so the conversion
    peaks near one copy of the table rather than two (when the caller no longer holds
    ``table``). Take a subset that will gain columns with ``.copy()`` (which consolidates it). ``as_of`` holds a handful of dates: its rows share one ``datetime.date``
    object per date instead of one object per row.
    """
    dates = table.column("as_of")
    unique = pc.unique(dates)
    codes = pc.fill_null(pc.index_in(dates, value_set=unique), -1).to_numpy(zero_copy_only=False)
    as_of = np.array([*unique.to_pylist(), None], dtype=object)[codes]
    position = table.column_names.index("as_of")
    rest = table.remove_column(position)
    del table, dates
    frame = rest.to_pandas(split_blocks=True, self_destruct=True)
    with warnings.catch_warnings():
        # One block per column is the point here (no consolidating copy): not a fragmentation to fix.
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        frame.insert(position, "as_of", as_of)
    return frame


def build_training_table(
    tables: Tables,
    as_of_dates: Iterable[date],
    settings: FeatureSettings,
    outcome_settings: OutcomeSettings,
    extract_date: date | None = None,
) -> pd.DataFrame:
    """Features and outcomes at several as-of dates, one row per person and as-of date.

    A person in the cohort at several dates has several rows (as SPARRA does with
    several cutoffs); split by person with :func:`split_people` so no person is in
    both training and test data.
    """
    dates = sorted(set(as_of_dates))
    if not dates:
        raise RiskstratError("no as-of dates given for the training table", hint="Give at least one date.")
    return stack_matrices(
        build_feature_matrix(tables, as_of, settings, outcome_settings, extract_date) for as_of in dates
    )


def split_people(persons: Iterable[str], fractions: Mapping[str, float], seed: int = 0) -> pd.Series:
    """Assign each person to one split (e.g. train/test) by a seeded hash of their ID.

    The assignment depends only on the ID and the seed, so a person keeps their
    split across runs, as-of dates and extracts, and never appears in two splits.

    Args:
        persons: Person IDs (repeats allowed; each person gets one split).
        fractions: Split name to share of people, e.g. ``{"train": 0.8, "test": 0.2}``; shares sum to 1.
        seed: Changes the assignment.

    Returns:
        Split name by person ID (index ``person_id``), one entry per distinct person.

    Raises:
        RiskstratError: If the fractions are negative or do not sum to 1.
    """
    shares = np.array(list(fractions.values()), dtype="float64")
    if (shares < 0).any() or not np.isclose(shares.sum(), 1.0):
        raise RiskstratError(
            f"split fractions must be >= 0 and sum to 1, got {dict(fractions)}",
            hint="For example {'train': 0.8, 'test': 0.2}.",
        )
    ids = pd.Series(pd.unique(pd.Series(list(persons), dtype="str")), dtype="str")
    hash_key = f"riskstrat{seed % 10**7:07d}"
    hashed = pd.util.hash_pandas_object(ids, index=False, hash_key=hash_key)
    uniform = hashed.to_numpy(dtype="uint64") / float(2**64)
    bounds = np.cumsum(shares)
    bounds[-1] = 1.0
    index = np.searchsorted(bounds, uniform, side="right").clip(max=len(shares) - 1)
    names = np.array(list(fractions.keys()), dtype=object)
    return pd.Series(names[index], index=pd.Index(ids, name="person_id"), name="split", dtype="str")
