"""Error rates of the fairness audit and the promotion gates, measured with their own code.

Outcomes are re-drawn from known probabilities and judged by the code the
retrain flow runs (:func:`riskstrat.evaluation.fairness.run_audit`,
:func:`~riskstrat.evaluation.fairness.open_flags` and
:func:`riskstrat.models.promotion.calibration_checks` on
:func:`riskstrat.models.metrics.evaluate_scores`), so each rate is the rate of
the rule as built, not of a textbook version of it.

* **Null** (a perfectly calibrated, fair model): ``y ~ Bernoulli(p)`` with ``p`` the
  model's calibrated predictions on the test rows; the need measures (and the
  GP-recording counts, when present) are shuffled among people of nearly the same
  predicted risk, so at equal risk no group has more need than another. Every
  raised flag is a false one.
* **Effects**: a group's true risk multiplied (the model under-predicts it), a
  place's recorded events thinned (capture loss: a share of its events never
  reach the extract), or a group's need at equal risk multiplied. Detection is a
  raised flag (or combined finding) of the expected kind for that group.
* **Gates**: true O/E set by scaling ``p`` and true calibration slope by
  ``logit P(y) = a + b logit(p)`` (``a`` keeping the expected events); false
  refusal at 1.0, false acceptance beyond the bounds.

The lists are the back-tested lists on the same rows: who is listed depends on
``p`` only, which the simulation keeps, so the selections are kept and only
their outcomes re-drawn. Every rate carries its Wilson 95% interval and the
number of replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from riskstrat.evaluation.fairness import FairnessAudit, open_flags, run_audit, wilson
from riskstrat.evaluation.groups import assign_groups
from riskstrat.evaluation.recording import RECORDING_COLUMNS
from riskstrat.evaluation.settings import FLAG_KINDS, FairnessSettings
from riskstrat.models.metrics import evaluate_scores
from riskstrat.models.promotion import calibration_checks, refusal_chance, standard_error_at
from riskstrat.models.settings import EvaluationSettings, PromotionSettings

COMBINED = "combined"
"""Kind of a combined finding (several coherent measures for one group)."""

NEED_BINS = 50
"""Equal-count bins of predicted risk within which need is shuffled under the null."""

OUTCOME_TABLE_NEED = ("emergency_admissions_next_year", "bed_days_next_year")
"""Need measures counted from the hospital table a capture loss thins."""


@dataclass(frozen=True)
class Population:
    """The audit's inputs on real test rows: predictions (``y``, ``p``, groups, need) and the lists.

    Attributes:
        predictions: :func:`riskstrat.evaluation.fairness.predictions_schema` rows.
        selections: :func:`riskstrat.evaluation.fairness.selections_schema` rows, same people.
    """

    predictions: pd.DataFrame
    selections: pd.DataFrame


@dataclass(frozen=True)
class Scenario:
    """A known effect put into re-drawn outcomes, and the flags that count as finding it.

    Attributes:
        name: Short name for the tables, e.g. ``under_prediction_x1.5_ethnic_group_Black``.
        effect: ``under_prediction`` (the group's true risk times ``factor``),
            ``capture_loss`` (a share ``factor`` of the group's recorded events lost) or
            ``need_shift`` (the group's need measures times ``factor`` at equal risk).
        grouping: The grouping holding the group (e.g. ``ethnic_group``, ``local_authority``).
        group: The group as the audit names it (after recoding).
        factor: The size of the effect.
        kinds: Flag kinds that count as detection (a combined finding always does).
    """

    name: str
    effect: str
    grouping: str
    group: str
    factor: float
    kinds: tuple[str, ...]


def under_prediction(grouping: str, group: str, factor: float) -> Scenario:
    """The group's true risk is ``factor`` times what the model predicts."""
    return Scenario(
        f"under-prediction x{factor:g}: {grouping} {group}",
        "under_prediction",
        grouping,
        group,
        factor,
        ("calibration_oe",),
    )


def capture_loss(grouping: str, group: str, share_lost: float) -> Scenario:
    """A share of the place's recorded events (and hospital need counts) never reach the extract."""
    return Scenario(
        f"capture loss {100 * share_lost:.0f}%: {grouping} {group}",
        "capture_loss",
        grouping,
        group,
        share_lost,
        ("calibration_oe",),
    )


def need_shift(grouping: str, group: str, factor: float) -> Scenario:
    """At equal predicted risk, the group has ``factor`` times the need of everyone else."""
    return Scenario(
        f"need x{factor:g} at equal risk: {grouping} {group}",
        "need_shift",
        grouping,
        group,
        factor,
        ("need_at_equal_risk",),
    )


@dataclass
class AuditReplicate:
    """One simulated audit: raised flags per kind, whether the fairness gate blocked, whether the effect was found."""

    raised: dict[str, int] = field(default_factory=dict)
    gate_blocked: bool = False
    detected: bool = False


# --- drawing ------------------------------------------------------------------------------


def _need_columns(predictions: pd.DataFrame, settings: FairnessSettings) -> list[str]:
    columns = [m for m in settings.need_measures if m in predictions.columns]
    # The GP-recording counts too, when present, shuffled with need so they stay consistent.
    return columns + [c for c in RECORDING_COLUMNS if c in predictions.columns]


def _shuffle_within_risk(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of the rows that moves each row only among rows of nearly the same risk."""
    ranks = stats.rankdata(p, method="ordinal") - 1
    bins = (ranks * NEED_BINS) // len(p)
    order = np.lexsort((rng.random(len(p)), bins))  # rows by bin, in random order within it
    by_bin = np.argsort(bins, kind="stable")  # rows by bin, in their own order
    permutation = np.empty(len(p), dtype=int)
    permutation[by_bin] = order
    return permutation


def _members(predictions: pd.DataFrame, grouping: str, group: str) -> np.ndarray:
    """Rows in ``group`` of ``grouping``, as the audit recodes them."""
    frame, groupings = assign_groups(predictions.reset_index(drop=True))
    if grouping not in {g.name for g in groupings}:
        raise ValueError(f"the test rows have no grouping {grouping!r} to put an effect in")
    members = (frame[grouping] == group).to_numpy()
    if not members.any():
        raise ValueError(f"nobody in group {group!r} of {grouping!r}")
    return members


def draw(
    population: Population,
    settings: FairnessSettings,
    rng: np.random.Generator,
    scenario: Scenario | None = None,
    members: np.ndarray | None = None,
) -> Population:
    """One replicate: outcomes from the model's own probabilities (and the scenario's effect).

    Args:
        population: The real test rows and lists.
        settings: Fairness settings (which need measures to shuffle).
        rng: Random generator.
        scenario: The effect to put in (None: the null).
        members: The scenario group's rows (computed when omitted).

    Returns:
        The predictions and selections with ``y`` and need re-drawn; ``p`` and who is listed kept.
    """
    predictions = population.predictions.reset_index(drop=True).copy()
    p = predictions["p"].to_numpy(dtype=float)
    true_p = p.copy()
    if scenario is not None and members is None:
        members = _members(predictions, scenario.grouping, scenario.group)
    if scenario is not None and scenario.effect == "under_prediction":
        true_p[members] = np.clip(p[members] * scenario.factor, 0.0, 1.0)
    y = rng.random(len(p)) < true_p
    need = _need_columns(predictions, settings)
    shuffled = _shuffle_within_risk(p, rng)
    for column in need:
        predictions[column] = predictions[column].to_numpy()[shuffled]
    if scenario is not None and scenario.effect == "capture_loss":
        kept = scenario.factor <= rng.random(len(p))
        y = y & (kept | ~members)
        for column in OUTCOME_TABLE_NEED:
            if column in predictions.columns:
                values = predictions[column].to_numpy(dtype=float, copy=True)
                values[members] = rng.binomial(np.round(values[members]).astype(int), 1 - scenario.factor)
                predictions[column] = values
    if scenario is not None and scenario.effect == "need_shift":
        for column in settings.need_measures:
            if column in predictions.columns:
                values = predictions[column].to_numpy(dtype=float, copy=True)
                values[members] = values[members] * scenario.factor
                predictions[column] = values
    predictions["y"] = y.astype(int)
    selections = population.selections.reset_index(drop=True).copy()
    outcome = pd.Series(y.astype(int), index=predictions["person_id"].astype(str).to_numpy())
    selections["y"] = selections["person_id"].astype(str).map(outcome).to_numpy()
    return Population(predictions, selections)


# --- the audit ----------------------------------------------------------------------------


def _raised(audit: FairnessAudit) -> dict[str, int]:
    """Raised flags per kind, and raised combined findings."""
    counts = {kind: 0 for kind in (*FLAG_KINDS, COMBINED)}
    for flag in audit.flags:
        if flag.status == "raised":
            counts[flag.kind] = counts.get(flag.kind, 0) + 1
    for finding in getattr(audit, "findings", []):
        if finding.kind == COMBINED and finding.status == "raised":
            counts[COMBINED] += 1
    return counts


def _detected(audit: FairnessAudit, scenario: Scenario) -> bool:
    """Whether the audit raised a flag of the expected kind (or a combined finding) for the group."""
    hit = any(
        f.status == "raised"
        and f.kind in scenario.kinds
        and (f.grouping, f.group) == (scenario.grouping, scenario.group)
        for f in audit.flags
    )
    return hit or any(
        getattr(f, "kind", "") == COMBINED
        and f.status == "raised"
        and (f.grouping, f.group) == (scenario.grouping, scenario.group)
        for f in getattr(audit, "findings", [])
    )


def simulate_audits(
    population: Population,
    settings: FairnessSettings,
    replicates: int,
    seed: int,
    scenario: Scenario | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[AuditReplicate]:
    """Run the audit on ``replicates`` re-drawn outcomes (the null, or a scenario)."""
    rng = np.random.default_rng(seed)
    members = None
    if scenario is not None:
        members = _members(population.predictions, scenario.grouping, scenario.group)
    out = []
    for i in range(replicates):
        drawn = draw(population, settings, rng, scenario, members)
        audit = run_audit(drawn.predictions, drawn.selections, settings)
        out.append(
            AuditReplicate(
                raised=_raised(audit),
                gate_blocked=bool(open_flags(audit, settings)),
                detected=_detected(audit, scenario) if scenario is not None else False,
            )
        )
        if progress is not None:
            progress(i + 1)
    return out


def _rate(successes: int, total: int) -> dict[str, float]:
    low, high = wilson(successes, total, 0.95)
    # Clipped: the Wilson bounds of 0 or n successes come back a rounding error beyond [0, 1].
    low, high = max(0.0, low), min(1.0, high)
    return {"rate": successes / total if total else float("nan"), "lower": low, "upper": high}


def null_table(replicates: Sequence[AuditReplicate]) -> pd.DataFrame:
    """False raised flags per audit under the null, per kind and in all.

    Returns:
        One row per kind (plus ``any kind`` and ``fairness gate``): replicates, mean false
        flags per audit, audits with at least one (count, share, Wilson 95% interval).
    """
    n = len(replicates)
    kinds = sorted({k for r in replicates for k in r.raised})
    rows = []
    for kind in [*kinds, "any kind"]:
        per_audit = np.array(
            [sum(r.raised.values()) if kind == "any kind" else r.raised.get(kind, 0) for r in replicates]
        )
        with_one = int((per_audit > 0).sum())
        rate = _rate(with_one, n)
        rows.append(
            {
                "kind": kind,
                "replicates": n,
                "mean_false_flags": float(per_audit.mean()) if n else float("nan"),
                "audits_with_one_or_more": with_one,
                "share": rate["rate"],
                "share_lower": rate["lower"],
                "share_upper": rate["upper"],
            }
        )
    blocked = sum(r.gate_blocked for r in replicates)
    rate = _rate(blocked, n)
    rows.append(
        {
            "kind": "fairness gate (open flags)",
            "replicates": n,
            "mean_false_flags": float("nan"),
            "audits_with_one_or_more": blocked,
            "share": rate["rate"],
            "share_lower": rate["lower"],
            "share_upper": rate["upper"],
        }
    )
    return pd.DataFrame(rows)


def detection_row(scenario: Scenario, replicates: Sequence[AuditReplicate]) -> dict[str, object]:
    """Power of the audit against one scenario, with its interval."""
    n = len(replicates)
    hits = sum(r.detected for r in replicates)
    blocked = sum(r.gate_blocked for r in replicates)
    rate, gate = _rate(hits, n), _rate(blocked, n)
    return {
        "scenario": scenario.name,
        "replicates": n,
        "detected": hits,
        "power": rate["rate"],
        "power_lower": rate["lower"],
        "power_upper": rate["upper"],
        "gate_blocked": blocked,
        "gate_blocked_share": gate["rate"],
    }


# --- the calibration gates ----------------------------------------------------------------


def slope_probabilities(p: np.ndarray, slope: float) -> np.ndarray:
    """True probabilities whose calibration slope against ``p`` is ``slope``, expected events kept."""
    z = special.logit(np.clip(p, 1e-9, 1 - 1e-9))
    target = p.sum()

    def gap(a: float) -> float:
        return float(special.expit(a + slope * z).sum() - target)

    a = optimize.brentq(gap, -20, 20)
    return special.expit(a + slope * z)


def simulate_gates(
    p: np.ndarray,
    rules: PromotionSettings,
    evaluation: EvaluationSettings,
    replicates: int,
    seed: int,
    true_oe: Sequence[float] = (1.0, 0.85, 1.15, 1.2),
    true_slopes: Sequence[float] = (1.0, 0.8, 1.25),
) -> pd.DataFrame:
    """The calibration gates' refusal rates when the model's true O/E or slope is known.

    Outcomes are drawn from ``p x O/E`` (slope 1) or from the slope-``b`` recalibration of
    ``p`` (O/E 1); each replicate's metrics come from ``evaluate_scores`` with the model
    settings' bootstrap, and the decision from ``calibration_checks``.

    Args:
        p: The model's calibrated predictions on the test rows.
        rules: Promotion settings (bounds and rule).
        evaluation: Evaluation settings (bootstrap resamples and seed).
        replicates: Draws per true value.
        seed: Seed of the outcome draws.
        true_oe: True O/E values to simulate (slope 1).
        true_slopes: True slopes to simulate (O/E 1).

    Returns:
        One row per gate and true value: replicates, refused (count, share and Wilson 95%
        interval), whether the true value lies inside the bounds, and so which error the
        share measures (false refusal inside, false acceptance = 1 - share outside), and
        ``stated_refusal``: the mean refusal chance the gates' reasons state (from each
        draw's interval), to check the sentences against the simulation.
    """
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    cases = [("oe_ratio", v, np.clip(p * v, 0, 1)) for v in true_oe]
    cases += [("calibration_slope", b, slope_probabilities(p, b)) for b in true_slopes]
    rows = []
    for metric, truth, true_p in cases:
        refused, stated = 0, []
        for _ in range(replicates):
            y = (rng.random(len(p)) < true_p).astype(int)
            metrics = evaluate_scores(
                y, p, top_fractions=(), n_boot=evaluation.n_boot, seed=evaluation.seed
            ).assign(model="lightgbm")
            _, _, values = calibration_checks(metrics, rules)
            refused += values.get(f"challenger_{metric}_gate_passed", 0.0) == 0.0
            stated.append(_stated_refusal(values, metric, truth, rules))
        bounds = rules.oe_bounds if metric == "oe_ratio" else rules.calibration_slope_bounds
        inside = bounds[0] <= truth <= bounds[1]
        rate = _rate(refused, replicates)
        rows.append(
            {
                "gate": "O/E" if metric == "oe_ratio" else "calibration slope",
                "true_value": truth,
                "inside_bounds": inside,
                "error": "false refusal" if inside else "false acceptance",
                "replicates": replicates,
                "refused": refused,
                "refused_share": rate["rate"],
                "error_rate": rate["rate"] if inside else 1 - rate["rate"],
                "error_lower": rate["lower"] if inside else 1 - rate["upper"],
                "error_upper": rate["upper"] if inside else 1 - rate["lower"],
                "stated_refusal": float(np.nanmean(stated)) if stated else float("nan"),
                "events_expected": float(true_p.sum()),
            }
        )
    return pd.DataFrame(rows)


def _stated_refusal(values: dict[str, float], metric: str, truth: float, rules: PromotionSettings) -> float:
    """The refusal chance the gate's reason would state for this true value, from this draw's interval."""
    low, high = values[f"challenger_{metric}_ci_low"], values[f"challenger_{metric}_ci_high"]
    log_scale = metric == "oe_ratio"
    if log_scale:
        if low <= 0 or high <= low:
            return float("nan")
        se = (np.log(high) - np.log(low)) / (2 * stats.norm.ppf(0.975))
    else:
        se = (high - low) / (2 * stats.norm.ppf(0.975))
    if not se > 0:
        return float("nan")
    bounds = rules.oe_bounds if log_scale else rules.calibration_slope_bounds
    se = standard_error_at(float(se), values[f"challenger_{metric}"], truth, log_scale)
    return refusal_chance(truth, se, bounds, rules.calibration_evidence, log_scale)


def upper_bound(successes: int, total: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a proportion (for a test that must not flake)."""
    if successes >= total:
        return 1.0
    return float(stats.beta.ppf(confidence, successes + 1, total - successes))
