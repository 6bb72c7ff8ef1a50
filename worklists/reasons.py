"""The reasons on each row: the factors that raise a listed person's risk most, in plain English.

Contributions are LightGBM ``pred_contrib`` values (TreeSHAP, the same as
``shap.TreeExplainer``) in the model's raw (log-odds) units, computed for listed
people only. Windows of one concept (A&E attendances over 30, 90 and 365 days)
count as one reason: the concept's contribution is the sum over its features,
and only concepts whose summed contribution is positive (they raise risk) can be
a reason. The text shows the concept's most informative feature with the
person's own value: its 12-month window when it has one (it holds the shorter
windows' events too), the eFI score for frailty (its text names the category
as well), otherwise the feature with the largest contribution. Concepts and
texts come from the feature dictionary (:func:`riskstrat.features.dictionary.feature_concept`
and :func:`~riskstrat.features.dictionary.reason_text`). Ties are broken by
concept name, so the order is stable.

Two changes make the three slots say something a clinician can act on, without
changing the attribution:

- **Contact counts give way** (:data:`CONTACT_CONCEPTS`). GP appointments and
  community care contacts raise almost everyone's risk on a high-risk list (on
  the demo lists the GP appointment count was a top-3 reason for 299 of 300
  people), so they say little about the person: a slot goes to them only when
  fewer than ``count`` other concepts raise the risk. The other reasons keep
  their TreeSHAP order; the A&E count is printed in its own column and the GP
  appointment count sits beside the printed columns on screen
  (:mod:`riskstrat.worklists.rows`).
- **Absences give way**: a concept whose shown value is a count of zero ("0 A&E
  attendances in the last 12 months") may raise the risk through the model's
  interactions, but it is nothing to act on, so it too takes a slot only when
  nothing else is left.
- **Not known is not a reason** (:data:`NOT_REASONS`, :data:`KNOWN_FLAGS`):
  ``social_care_known`` says whether the local authority's return is in, nothing
  about the person, so it is never a reason, and neither is the social care
  concept of a person whose social care is not known (its values are unknown).
- **Recency in words** (:data:`RECENCY_FEATURES`): "A&E attendance in the last
  week", "Discharged from hospital 3 weeks ago", not "0 days ago".

:func:`reason_frequency` and :func:`rows_with_contact_reason` count what the
published lists show, so these figures can be measured on any week's CSVs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.features.dictionary import SOCIAL_CARE_CONCEPT, feature_concept, reason_text, window_words
from riskstrat.features.social_care import KNOWN as SOCIAL_CARE_KNOWN

NON_FEATURE_COLUMNS: frozenset[str] = frozenset(
    {"person_id", "as_of", "bias", "(bias)", "base_value", "expected_value", "intercept"}
)
"""Columns of a contributions frame that are not features (the bias term is not a reason)."""

_WINDOW = re.compile(r"^(?P<stem>.+)_(?P<days>\d+)d$")
DISPLAY_WINDOW_DAYS = 365
"""The window whose text is shown for a windowed concept ("in the last 12 months")."""
DISPLAY_FEATURES: frozenset[str] = frozenset({"efi_score"})
"""Features whose text is shown for their concept in preference to the others."""
CONTACT_CONCEPTS: frozenset[str] = frozenset({"gp_appointments", "community_contacts"})
"""Concepts that count contacts with services: they take a reason slot only when nothing else is left."""
RECENCY_FEATURES: dict[str, tuple[str, str]] = {
    "days_since_last_ae": ("A&E attendance in the last week", "Last A&E attendance {ago}"),
    "days_since_last_discharge": (
        "Discharged from hospital in the last week",
        "Discharged from hospital {ago}",
    ),
}
"""Days-since features written in weeks or months: (text within a week, text with "3 weeks ago")."""
NOT_REASONS: frozenset[str] = frozenset({SOCIAL_CARE_KNOWN})
"""Features that say whether a source's data is in, not anything about the person: never a reason
(their contributions are left out of their concept's)."""
KNOWN_FLAGS: dict[str, str] = {SOCIAL_CARE_CONCEPT: SOCIAL_CARE_KNOWN}
"""Concept -> the flag saying its data is known: where the flag is 0 the concept is never a reason."""
CONTACT_TEXT = re.compile(r"\b(?:GP appointments?|GP home visits?|contacts?) in the last\b")
"""How a contact-count reason reads on a published list (GP appointments, home visits, missed
appointments and community contacts of any service)."""


@dataclass(frozen=True)
class FeatureVocabulary:
    """How features are grouped into concepts and written as reasons."""

    concept: Callable[[str], str]
    reason_text: Callable[[str, Any], str]


def _is_display_feature(feature: str) -> bool:
    match = _WINDOW.match(feature)
    return feature in DISPLAY_FEATURES or bool(match and int(match.group("days")) == DISPLAY_WINDOW_DAYS)


def _plain_concept(feature: str) -> str:
    """The concept of a feature the dictionary does not know: its name without the window."""
    match = _WINDOW.match(feature)
    return match.group("stem") if match else feature


def _plain_reason_text(feature: str, value: Any) -> str:
    """The reason text of a feature the dictionary does not know, from its name."""
    if value is None:
        return f"{feature.replace('_', ' ')}: not recorded"
    match = _WINDOW.match(feature)
    if match:
        thing = match.group("stem").replace("_", " ")
        return f"{_format_value(value)} {thing} in the last {window_words(int(match.group('days')))}"
    return f"{feature.replace('_', ' ')}: {_format_value(value)}"


def recency_text(feature: str, days: float) -> str:
    """A days-since reason in words: within a week, then weeks (under 8), then months.

    Args:
        feature: A key of :data:`RECENCY_FEATURES`.
        days: Days from the event to the data date (0 = on the data date).

    Returns:
        E.g. "A&E attendance in the last week", "Last A&E attendance 3 weeks ago".
    """
    recent, earlier = RECENCY_FEATURES[feature]
    days = int(days)
    if days < 7:
        return recent
    if days < 56:
        weeks = days // 7
        return earlier.format(ago=f"{weeks} week{'s' if weeks > 1 else ''} ago")
    months = max(2, round(days / 30.44))
    return earlier.format(ago=f"{months} months ago")


def _format_value(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def feature_vocabulary() -> FeatureVocabulary:
    """The feature dictionary's concepts and reason texts, each worked out once per feature and value.

    The dictionary describes the features of the default feature settings; a
    feature only other settings build (``include_ethnicity: true``, another
    ``readmission_days``) gets its name without the window as concept and a
    plain text made from its name.
    """
    # Texts repeat (counts are small whole numbers), so each (feature, value) is written once.
    concepts: dict[str, str] = {}
    texts: dict[tuple[str, Any], str] = {}

    def concept_of(feature: str) -> str:
        if feature not in concepts:
            try:
                concepts[feature] = feature_concept(feature)
            except KeyError:  # not in the dictionary
                concepts[feature] = _plain_concept(feature)
        return concepts[feature]

    def text_of(feature: str, value: Any) -> str:
        value = None if value is None or pd.isna(value) else value
        key = (feature, value if value is None or isinstance(value, str) else float(value))
        if key not in texts:
            if feature in RECENCY_FEATURES and value is not None:
                texts[key] = recency_text(feature, float(value))
                return texts[key]
            try:
                texts[key] = reason_text(feature, value)
            except KeyError:  # not in the dictionary
                texts[key] = _plain_reason_text(feature, value)
        return texts[key]

    return FeatureVocabulary(concept=concept_of, reason_text=text_of)


def _contribution_matrix(contributions: pd.DataFrame) -> tuple[pd.Index, list[str], np.ndarray]:
    frame = contributions
    if "person_id" in frame.columns:
        frame = frame.set_index("person_id")
    features = [c for c in frame.columns if c not in NON_FEATURE_COLUMNS]
    values = frame[features].to_numpy(dtype="float64", na_value=0.0)
    return frame.index.astype(str), features, values


def concept_contributions(
    contributions: pd.DataFrame, vocabulary: FeatureVocabulary | None = None
) -> pd.DataFrame:
    """Contributions summed by concept (one column per concept, one row per person).

    Args:
        contributions: TreeSHAP contributions, features as columns, ``person_id`` as
            index or column; a bias column is ignored.
        vocabulary: Concepts of features; defaults to :func:`feature_vocabulary`.

    Returns:
        Person x concept contributions, concepts sorted by name.
    """
    vocabulary = vocabulary or feature_vocabulary()
    people, features, values = _contribution_matrix(contributions)
    concepts = pd.Series([vocabulary.concept(f) for f in features], index=features)
    summed = pd.DataFrame(values, index=people, columns=features).T.groupby(concepts).sum().T
    return summed[sorted(summed.columns)]


def _feature_values(feature: str, lookup: pd.DataFrame, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The listed people's values of ``feature`` (NaN when the rows lack it), read once per feature."""
    if feature not in columns:
        columns[feature] = (
            lookup[feature].to_numpy(dtype=object)
            if feature in lookup.columns
            else np.full(len(lookup), np.nan)
        )
    return columns[feature]


def _shows_zero(
    shown: np.ndarray, names: list[str], lookup: pd.DataFrame, columns: dict[str, np.ndarray]
) -> np.ndarray:
    """Person x concept: the value the reason would show is a count of zero (not a recency)."""
    zero = np.zeros(shown.shape, dtype=bool)
    for j in range(shown.shape[1]):
        for index in np.unique(shown[:, j]):
            feature = names[index]
            if feature in RECENCY_FEATURES:
                continue  # 0 days since = today: a reason, written in words
            rows = shown[:, j] == index
            values = pd.to_numeric(
                pd.Series(_feature_values(feature, lookup, columns)[rows]), errors="coerce"
            )
            zero[rows, j] = (values == 0).to_numpy()
    return zero


def top_reasons(
    contributions: pd.DataFrame,
    features: pd.DataFrame,
    count: int = 3,
    vocabulary: FeatureVocabulary | None = None,
    give_way: Collection[str] = CONTACT_CONCEPTS,
    absences_give_way: bool = True,
) -> pd.DataFrame:
    """The ``count`` concepts that raise each person's risk most, written as reasons.

    Concepts in ``give_way`` come after every other concept that raises the risk, so
    they fill a slot only when fewer than ``count`` others do; the order within each
    part is TreeSHAP's.

    Args:
        contributions: TreeSHAP contributions for the listed people (features as
            columns, ``person_id`` as index or column), as ``models.explain`` returns
            or ``booster.predict(X, pred_contrib=True)`` gives.
        features: The feature matrix rows of those people (``person_id`` and the
            feature columns), for the values shown in the text.
        count: Reasons per person.
        vocabulary: Concepts and texts; defaults to :func:`feature_vocabulary`.
        give_way: Concepts that give way to the others (default: contact counts,
            :data:`CONTACT_CONCEPTS`); empty (with ``absences_give_way`` off) for the plain
            TreeSHAP order.
        absences_give_way: A concept whose shown value is a count of zero gives way too.

    Returns:
        One row per person (index ``person_id``, in the order of ``contributions``):
        ``reason_1`` .. ``reason_<count>`` (text, empty when fewer concepts raise risk),
        and for each ``reason_<i>_concept``, ``reason_<i>_feature`` and
        ``reason_<i>_contribution`` (the concept's summed contribution, log-odds).
    """
    vocabulary = vocabulary or feature_vocabulary()
    people, names, values = _contribution_matrix(contributions)
    kept = [i for i, name in enumerate(names) if name not in NOT_REASONS]
    names, values = [names[i] for i in kept], values[:, kept]
    concept_of = [vocabulary.concept(f) for f in names]
    concepts = sorted(set(concept_of))
    members = {c: np.array([i for i, k in enumerate(concept_of) if k == c]) for c in concepts}
    n = len(people)
    sums = np.zeros((n, len(concepts)))
    shown = np.zeros((n, len(concepts)), dtype="int64")
    for j, concept in enumerate(concepts):
        block = values[:, members[concept]]
        sums[:, j] = block.sum(axis=1)
        preferred = [i for i in members[concept] if _is_display_feature(names[i])]
        if preferred:
            shown[:, j] = preferred[0]
        elif n:
            shown[:, j] = members[concept][np.argmax(block, axis=1)]
    lookup = features.assign(person_id=features["person_id"].astype(str)).set_index("person_id")
    unknown = people.difference(lookup.index)
    if len(unknown):
        raise RiskstratError(
            f"contributions: {len(unknown):,} row(s) whose person_id is not in the feature rows",
            details=f"e.g. {unknown[0]}",
            hint="Index the contributions by person_id (explain rows indexed by person_id).",
        )
    lookup = lookup.reindex(people)
    columns: dict[str, np.ndarray] = {}
    for concept, flag in KNOWN_FLAGS.items():
        if concept in concepts and flag in lookup.columns:
            not_known = pd.to_numeric(lookup[flag], errors="coerce").to_numpy() == 0
            sums[not_known, concepts.index(concept)] = 0.0  # unknown values say nothing to act on
    # Raising concepts first, then those that give way: contact counts, and a concept whose shown
    # value is zero ("0 A&E attendances in the last 12 months": an absence raising the risk through
    # the model's interactions is true, but nothing a clinician can act on). Each part in TreeSHAP order.
    yields = np.array([c in give_way for c in concepts], dtype=bool)[None, :]
    if absences_give_way:
        yields = yields | _shows_zero(shown, names, lookup, columns)
    key = np.where(sums > 0, -sums, np.inf) + np.where(yields & (sums > 0), 1e9, 0.0)
    order = np.argsort(key, axis=1, kind="stable")[:, :count]
    out: dict[str, list[Any]] = {}
    for i in range(1, count + 1):
        for suffix in ("", "_concept", "_feature"):
            out[f"reason_{i}{suffix}"] = [""] * n
        out[f"reason_{i}_contribution"] = [np.nan] * n
    for row in range(n):
        for slot, j in enumerate(order[row], start=1):
            if sums[row, j] <= 0:
                break
            feature = names[shown[row, j]]
            value = _feature_values(feature, lookup, columns)[row]
            out[f"reason_{slot}"][row] = vocabulary.reason_text(feature, value)
            out[f"reason_{slot}_concept"][row] = concepts[j]
            out[f"reason_{slot}_feature"][row] = feature
            out[f"reason_{slot}_contribution"][row] = float(sums[row, j])
    result = pd.DataFrame(out, index=pd.Index(people, name="person_id"))
    return result


def reason_kind(text: str) -> str:
    """A reason with its person's numbers replaced by N ("N GP appointments in the last N months")."""
    return re.sub(r"\d+(\.\d+)?", "N", text)


def reason_frequency(rows: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """How many rows show each kind of reason in any of ``columns`` (e.g. the published list's Reason 1-3).

    Args:
        rows: List rows (a week's CSVs read and concatenated).
        columns: The reason columns.

    Returns:
        ``reason`` (the kind, numbers as N), ``rows`` (rows showing it at least once) and
        ``share`` (of all rows), most frequent first.
    """
    kinds = rows[list(columns)].fillna("").astype(str).map(lambda t: reason_kind(t) if t else "")
    per_row = kinds.apply(lambda r: {k for k in r if k}, axis=1)
    counts = pd.Series([k for shown in per_row for k in shown], dtype="object").value_counts()
    out = counts.rename_axis("reason").reset_index(name="rows")
    out["share"] = out["rows"] / max(len(rows), 1)
    return out.sort_values(["rows", "reason"], ascending=[False, True], kind="stable").reset_index(drop=True)


def rows_with_contact_reason(rows: pd.DataFrame, columns: Sequence[str]) -> int:
    """Rows whose reasons in ``columns`` include a contact count (:data:`CONTACT_TEXT`)."""
    text = rows[list(columns)].fillna("").astype(str)
    return int(text.apply(lambda column: column.str.contains(CONTACT_TEXT)).any(axis=1).sum())
