"""The cut-off record of each published week: who was listed and who was just below the cut-off.

Every MDT takes exactly its capacity from a ranked list each week, so the people just
above and just below the cut-off are alike except for being listed: a natural
experiment the impact evaluation (issue 22, ``docs/impact-evaluation.md``) draws on.
Each published week therefore keeps, beside its lists and history,
``worklists/<week>/assignment.parquet`` (:data:`WEEK_ASSIGNMENT`), listed in the
week's manifest with its SHA-256 and published in the same atomic step:

- every listed person, and the eligible people ranked ``capacity + 1`` to
  ``capacity + people_below`` (``cutoff_record.people_below`` in ``configs/mdts.yaml``);
- every member of the week's lottery pool, when the lottery is on, with whether they
  were drawn and the seed of the draw (:func:`riskstrat.worklists.selection.draw_lottery`).

The file holds pseudonymised IDs only, like ``history.parquet``. People in it who are
not listed are recorded, never shown: they are on no list, no 'Left the list' for being
near the cut-off, and not in the history.

:func:`read_assignments` reads the record of every published week, skipping weeks
published before this file existed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from riskstrat.errors import RiskstratError
from riskstrat.frames import Column, FrameSchema, Kind
from riskstrat.io import write_arrow_parquet
from riskstrat.worklists.history import published_weeks
from riskstrat.worklists.selection import MdtSelection

WEEK_ASSIGNMENT = "assignment.parquet"
"""The week's cut-off record, inside its published folder ``<output_dir>/worklists/<week>/``."""

ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    "week",
    "data_date",
    "mdt",
    "person_id",
    "practice_code",
    "outcome",
    "eligible_rank",
    "probability",
    "cutoff_probability",
    "capacity",
    "listed",
    "lottery_pool",
    "lottery_won",
    "lottery_seed",
)
"""The columns of ``assignment.parquet``, in order (see :data:`ASSIGNMENT`)."""

ASSIGNMENT_SCHEMA = pa.schema(
    [
        ("week", pa.date32()),
        ("data_date", pa.date32()),
        ("mdt", pa.string()),
        ("person_id", pa.string()),
        ("practice_code", pa.string()),
        ("outcome", pa.string()),
        ("eligible_rank", pa.int64()),
        ("probability", pa.float64()),
        ("cutoff_probability", pa.float64()),
        ("capacity", pa.int64()),
        ("listed", pa.bool_()),
        ("lottery_pool", pa.bool_()),
        ("lottery_won", pa.bool_()),
        ("lottery_seed", pa.string()),
    ]
)
"""The Arrow types ``assignment.parquet`` is written with."""

ASSIGNMENT = FrameSchema(
    name="list assignment",
    columns=(
        Column("week", Kind.DATE),
        Column("data_date", Kind.DATE),
        Column("mdt", Kind.TEXT),
        Column("person_id", Kind.TEXT),
        Column("practice_code", Kind.TEXT),
        Column("outcome", Kind.TEXT),
        Column("eligible_rank", Kind.INTEGER),
        Column("probability", Kind.PROBABILITY),
        Column("cutoff_probability", Kind.PROBABILITY, nullable=True),
        Column("capacity", Kind.INTEGER),
        Column("listed", Kind.BOOLEAN),
        Column("lottery_pool", Kind.BOOLEAN),
        Column("lottery_won", Kind.BOOLEAN),
        Column("lottery_seed", Kind.TEXT),
    ),
    key=("week", "mdt", "person_id"),
    hint=(
        "Build it with riskstrat.worklists.assignment.assignment_records(), one row per MDT, week and "
        "person: every listed person and the eligible people just below the cut-off."
    ),
)
"""The cut-off record of published weeks (``worklists/<week>/assignment.parquet``), one row per
week, MDT and person:

- ``week``, ``data_date``: the list's week (Monday) and the as-of date of its scores;
- ``mdt``, ``person_id``, ``practice_code``, ``outcome``: the MDT, the person and what the list ranks by;
- ``eligible_rank``: 1 = highest risk among the people eligible for the list that week (after
  exclusions, rests and caseload decisions), ties broken as the list breaks them;
- ``probability``: the person's risk on the MDT's outcome; ``cutoff_probability``: the risk at
  eligible rank ``capacity`` (NaN when fewer were eligible); ``capacity``: the list's places;
- ``listed``: on the published list; ``lottery_pool`` / ``lottery_won``: in the week's draw for
  the last places / drawn (False outside the pool); ``lottery_seed``: the draw's seed ("" if none).
"""


def empty_assignments() -> pd.DataFrame:
    """An assignment frame with no rows and the types :func:`read_assignments` gives."""
    return ASSIGNMENT_SCHEMA.empty_table().to_pandas(date_as_object=True)


def assignment_records(week: date, data_date: date, selections: dict[str, MdtSelection]) -> pd.DataFrame:
    """This week's cut-off record: every listed person and the eligible people just below the cut-off.

    Args:
        week: The week being published (its Monday).
        data_date: The as-of date of the week's scores.
        selections: MDT name -> its selection (:func:`~riskstrat.worklists.selection.select_worklists`),
            whose ``near_cutoff`` holds the ranking around the cut-off.

    Returns:
        :data:`ASSIGNMENT_COLUMNS`, MDT by MDT in the order given and by ``eligible_rank``
        within each; ``week`` and ``data_date`` as ``datetime.date``.
    """
    frames = []
    for name, selection in selections.items():
        near = selection.near_cutoff
        n = len(near)
        frames.append(
            pd.DataFrame(
                {
                    "week": [week] * n,
                    "data_date": [data_date] * n,
                    "mdt": [name] * n,
                    "person_id": near["person_id"].astype(str).to_numpy(dtype=object),
                    "practice_code": near["practice_code"].astype(str).to_numpy(dtype=object),
                    "outcome": [selection.mdt.outcome] * n,
                    "eligible_rank": near["eligible_rank"].to_numpy(dtype="int64"),
                    "probability": near["probability"].to_numpy(dtype="float64"),
                    "cutoff_probability": np.full(n, selection.cutoff_probability, dtype="float64"),
                    "capacity": np.full(n, selection.capacity, dtype="int64"),
                    "listed": near["listed"].to_numpy(dtype=bool),
                    "lottery_pool": near["lottery_pool"].to_numpy(dtype=bool),
                    "lottery_won": near["lottery_won"].to_numpy(dtype=bool),
                    "lottery_seed": np.where(
                        near["lottery_pool"].to_numpy(dtype=bool), selection.lottery_seed, ""
                    ).astype(object),
                }
            )
        )
    if not frames:
        return empty_assignments()
    return pd.concat(frames, ignore_index=True)[list(ASSIGNMENT_COLUMNS)]


def record_assignment(week_folder: Path, records: pd.DataFrame) -> Path:
    """Write one week's cut-off record into its (staging) week folder, published with it.

    Args:
        week_folder: The week's folder being written (the export's staging folder).
        records: Output of :func:`assignment_records`.

    Returns:
        The file written, ``<week_folder>/assignment.parquet``.
    """
    ASSIGNMENT.check(records)
    table = pa.Table.from_pandas(
        records[list(ASSIGNMENT_COLUMNS)], schema=ASSIGNMENT_SCHEMA, preserve_index=False
    )
    target = Path(week_folder) / WEEK_ASSIGNMENT
    write_arrow_parquet(table, target)
    return target


def _read_week_assignment(path: Path, week: date) -> pd.DataFrame:
    """One published week's cut-off record, or a clear error naming the week."""
    hint = (
        f"Restore the folder {week.isoformat()} from your backup, or re-run that week with the extract it "
        f"was made from (`riskstrat worklists --week {week}`). Then run again."
    )
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise RiskstratError(
            f"{path}: the cut-off record of week {week} cannot be read ({type(exc).__name__})", hint=hint
        ) from None
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in frame.columns]
    if missing:
        raise RiskstratError(
            f"{path}: the cut-off record of week {week} lacks column(s) {', '.join(missing)}", hint=hint
        )
    frame = frame[list(ASSIGNMENT_COLUMNS)]
    weeks = pd.to_datetime(frame["week"]).dt.date
    if len(frame) and not (weeks == week).all():
        raise RiskstratError(
            f"{path}: the cut-off record in the folder of week {week} holds {int((weeks != week).sum()):,} "
            "row(s) of another week",
            hint=hint,
        )
    try:
        ASSIGNMENT.check(frame)
    except RiskstratError as exc:
        raise RiskstratError(
            f"{path}: the cut-off record of week {week} is damaged: {exc.log_message}",
            hint=hint,
            details=exc.details,
        ) from None
    return frame


def read_assignments(worklists_dir: Path) -> pd.DataFrame:
    """The cut-off record of every published week, oldest first.

    Weeks published before the record existed (no ``assignment.parquet``) are skipped.

    Args:
        worklists_dir: The folder of published weeks, ``<output_dir>/worklists``.

    Returns:
        :data:`ASSIGNMENT_COLUMNS`; ``week`` and ``data_date`` as ``datetime.date``,
        ``person_id`` as text (empty, typed, when no week has a record).

    Raises:
        RiskstratError: If a week's record cannot be read or breaks :data:`ASSIGNMENT`,
            naming the week and what to do.
    """
    frames = [
        _read_week_assignment(folder / WEEK_ASSIGNMENT, week)
        for week, folder in published_weeks(Path(worklists_dir)).items()
        if (folder / WEEK_ASSIGNMENT).is_file()
    ]
    if not frames:
        return empty_assignments()
    out = pd.concat(frames, ignore_index=True)
    for column in ("week", "data_date"):
        out[column] = pd.to_datetime(out[column]).dt.date
    out["person_id"] = out["person_id"].astype(str)
    return out
