"""Gated promotion: move the ``champion`` alias only when the challenger has earned it.

Rules (``promotion`` in ``configs/model.yaml``), judged on the challenger's test rows:
    - no champion yet: the challenger must beat both baselines (prior-utilisation rule
      and logistic regression) on AUROC;
    - a champion exists: the champion is scored on the same rows; the challenger's
      AUROC must be at least the champion's minus ``auroc_tolerance``;
    - always: the challenger's observed/expected ratio and calibration slope are judged on
      evidence, with their 95% intervals (``calibration_evidence``): by default a model is
      refused only when a whole interval lies outside its bounds; each reason states the
      rule's error rates at the test set's precision (:func:`calibration_checks`);
    - always: every open fairness flag must have been accepted (hook for the fairness audit).

Each decision is returned as a :class:`PromotionDecision`, tagged on the
challenger's MLflow run and model version, and saved there as a JSON artifact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from riskstrat.models.baselines import LIGHTGBM, LOGISTIC, PRIOR_UTILISATION
from riskstrat.models.metrics import AUROC_DIFFERENCE, compare_models, metric_value
from riskstrat.models.registry import CHAMPION, Registration, alias_version, load_model, tracking
from riskstrat.models.settings import ModelSettings, PromotionSettings
from riskstrat.models.training import RiskModel

CHAMPION_MODEL = "champion"


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of a promotion check.

    Attributes:
        model_name: Registered model name.
        challenger_version: Version judged.
        champion_version: Version in use before the decision (None if none).
        eligible: Every gate passed.
        promoted: The champion alias was moved to the challenger.
        reasons: Plain-English reasons, one per gate (passed or failed).
        checks: The numbers behind the gates.
        decided_at: UTC time of the decision (ISO 8601).
    """

    model_name: str
    challenger_version: str
    champion_version: str | None
    eligible: bool
    promoted: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    decided_at: str = ""

    @property
    def status(self) -> str:
        """``promoted``, ``eligible_not_promoted`` or ``refused``."""
        if self.promoted:
            return "promoted"
        return "eligible_not_promoted" if self.eligible else "refused"

    def summary(self) -> str:
        """One paragraph for the command line and logs."""
        head = {
            "promoted": f"{self.model_name} version {self.challenger_version} is now the champion.",
            "eligible_not_promoted": (
                f"{self.model_name} version {self.challenger_version} passed every gate but was not promoted "
                "(auto-promotion is off; run riskstrat promote)."
            ),
            "refused": f"{self.model_name} version {self.challenger_version} was NOT promoted.",
        }[self.status]
        return head + "\n  - " + "\n  - ".join(self.reasons)


def _paired_difference(metrics: pd.DataFrame, other: str) -> str:
    """The paired AUROC difference with ``other``, e.g. "difference +0.0220, paired 95% CI +0.0040 to +0.0410".

    Empty when the metrics hold no ``auroc_difference`` row for ``other``.
    """
    rows = metrics[(metrics["metric"] == AUROC_DIFFERENCE) & (metrics["model"] == other)]
    if rows.empty:
        return ""
    row = rows.iloc[0]
    return f"difference {row['value']:+.4f}, paired 95% CI {row['ci_low']:+.4f} to {row['ci_high']:+.4f}"


CALIBRATION_GATES = (
    ("oe_ratio", "observed/expected ratio", "oe_bounds", "oe_material", True),
    ("calibration_slope", "calibration slope", "calibration_slope_bounds", "slope_material", False),
)
"""Metric, words, bounds setting, material setting, judged on the log scale (a ratio) or not."""

PERFECT_CALIBRATION = 1.0
"""The O/E and slope of a perfectly calibrated model."""

_Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class CalibrationEvidence:
    """One calibration metric of the challenger with its 95% interval, judged by a gate.

    Attributes:
        metric: ``oe_ratio`` or ``calibration_slope``.
        value: Point estimate on the test rows.
        lower: Lower end of its 95% interval (the point estimate when there is none).
        upper: Upper end of its 95% interval.
        events: Outcome events on the test rows (NaN when unknown).
        log_scale: Whether the estimate is judged on the log scale (a ratio).
    """

    metric: str
    value: float
    lower: float
    upper: float
    events: float
    log_scale: bool

    @property
    def has_interval(self) -> bool:
        """Whether a real interval (not a point) came with the estimate."""
        return bool(np.isfinite(self.lower) and np.isfinite(self.upper) and self.upper > self.lower)

    def standard_error(self) -> float:
        """The standard error the 95% interval implies (normal, on the judged scale); 0 without one."""
        if not self.has_interval:
            return 0.0
        low, high = _scaled((self.lower, self.upper), self.log_scale)
        return (high - low) / (2 * _Z95)

    def standard_error_at(self, true_value: float) -> float:
        """The standard error the estimate would have if the model's true value were ``true_value``.

        See :func:`standard_error_at`.
        """
        return standard_error_at(self.standard_error(), self.value, true_value, self.log_scale)


def standard_error_at(standard_error: float, observed: float, true_value: float, log_scale: bool) -> float:
    """The standard error of an estimate at a true value other than the one observed.

    The variance of a log O/E is about 1 / observed events, and the events scale with the
    true O/E at fixed expected events: a model truly at 0.8 gives fewer events, so a wider
    interval, than the observed O/E's. The standard error is scaled by
    sqrt(observed / true). A slope's (not a ratio) is taken as it is.

    Args:
        standard_error: Standard error at the observed value (on the judged scale).
        observed: The observed O/E (or slope).
        true_value: The true value the chance is computed at.
        log_scale: The estimate is a ratio judged on the log scale.
    """
    if not log_scale or not (observed > 0 and true_value > 0):
        return standard_error
    return standard_error * math.sqrt(observed / true_value)


def _scaled(values: tuple[float, ...], log_scale: bool) -> tuple[float, ...]:
    """Values on the scale the gate judges (log for ratios; non-positive ratios are -inf)."""
    if not log_scale:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return tuple(float(np.log(v)) if v > 0 else -math.inf for v in values)


def _evidence(metrics: pd.DataFrame, metric: str, log_scale: bool) -> CalibrationEvidence:
    """The challenger's ``metric`` from a tidy metric table, with its interval when the table has one."""
    value = metric_value(metrics, metric, LIGHTGBM)
    rows = metrics[(metrics["metric"] == metric) & (metrics["model"] == LIGHTGBM)]
    row = rows.iloc[0]
    lower = float(row["ci_low"]) if "ci_low" in rows.columns else float("nan")
    upper = float(row["ci_high"]) if "ci_high" in rows.columns else float("nan")
    if not (np.isfinite(lower) and np.isfinite(upper)):
        lower = upper = value
    events = float(row["events"]) if "events" in rows.columns else float("nan")
    return CalibrationEvidence(metric, value, lower, upper, events, log_scale)


def gate_passes(lower: float, upper: float, bounds: tuple[float, float], rule: str) -> bool:
    """Whether a calibration gate passes an estimate whose 95% interval is [lower, upper].

    Args:
        lower: Lower end of the interval.
        upper: Upper end of the interval.
        bounds: The acceptable range.
        rule: ``refuse_on_evidence`` (refuse only when the whole interval lies outside the
            bounds) or ``pass_on_evidence`` (pass only when it lies wholly inside them).
    """
    low, high = bounds
    if rule == "refuse_on_evidence":
        return not (lower > high or upper < low)
    return low <= lower and upper <= high


def refusal_chance(
    true_value: float, standard_error: float, bounds: tuple[float, float], rule: str, log_scale: bool
) -> float:
    """The chance a gate refuses a model whose true metric is ``true_value``.

    The estimate is taken as normal around the true value with the standard error its
    interval implies (on the log scale for a ratio), and its 95% interval as the estimate
    +/- 1.96 standard errors; ``riskstrat.evaluation.simulation`` checks these rates by
    re-drawing outcomes.

    Args:
        true_value: The model's true O/E or slope.
        standard_error: Standard error of the estimate on the judged scale (> 0).
        bounds: The acceptable range.
        rule: ``refuse_on_evidence`` or ``pass_on_evidence``.
        log_scale: Judge on the log scale (ratios).

    Returns:
        The probability of refusal, between 0 and 1.
    """
    truth, low, high = _scaled((true_value, *bounds), log_scale)
    if rule == "refuse_on_evidence":
        # Refused when estimate - z se > high, or estimate + z se < low.
        return float(
            stats.norm.sf((high - truth) / standard_error + _Z95)
            + stats.norm.cdf((low - truth) / standard_error - _Z95)
        )
    passing = stats.norm.cdf((high - truth) / standard_error - _Z95) - stats.norm.cdf(
        (low - truth) / standard_error + _Z95
    )
    return float(1 - max(passing, 0.0))


def _percent(chance: float) -> str:
    if chance < 0.001:
        return "under 0.1%"
    return f"{100 * chance:.1f}%" if chance < 0.1 else f"{100 * chance:.0f}%"


def _about(chance: float) -> str:
    """An approximate chance in words ("about 55%"; "under 0.1%" needs no "about")."""
    return _percent(chance) if chance < 0.001 else f"about {_percent(chance)}"


def _error_rates_text(
    evidence: CalibrationEvidence, bounds: tuple[float, float], material: tuple[float, float], rule: str
) -> tuple[str, dict[str, float]]:
    """The rule's two error rates at this precision, in words and as numbers.

    A material value inside the bounds is not a miscalibration, so it is not quoted.
    """
    se = evidence.standard_error()
    if se <= 0:
        return (
            "there is no interval, so the point estimate is judged and the rule's error rates are unknown",
            {},
        )
    refuses_perfect = refusal_chance(
        PERFECT_CALIBRATION, evidence.standard_error_at(PERFECT_CALIBRATION), bounds, rule, evidence.log_scale
    )
    numbers = {"refuses_perfect": refuses_perfect}
    text = f"at this many events the rule refuses a perfectly calibrated model {_percent(refuses_perfect)} of the time"
    outside = [m for m in material if not bounds[0] <= m <= bounds[1]]
    if outside:
        # Each at its own precision (a true O/E of 0.8 gives fewer events than one of 1.25).
        chances = {
            m: 1 - refusal_chance(m, evidence.standard_error_at(m), bounds, rule, evidence.log_scale)
            for m in outside
        }
        numbers["passes_material"] = max(chances.values())
        # Normal-approximation figures, not bounds: "about" (the simulation checks them).
        (first, first_chance), *others = chances.items()
        text += f", and the chance it passes one at {first:g} is {_about(first_chance)}"
        text += "".join(f", one at {m:g} {_about(chance)}" for m, chance in others)
    return text, numbers


SMALL_EVENTS = "fewer than 8 events"
"""What a report says in place of an event count that disclosure control suppresses."""


def _figures(evidence: CalibrationEvidence, scale: float, shown_events: float | str | None) -> str:
    """The estimate, its interval and the events, as quoted (``scale`` turns O/E to the shown counts)."""
    if isinstance(shown_events, str):
        if evidence.metric == "oe_ratio":
            return f"(figures not shown: {SMALL_EVENTS})"
        events = f", {SMALL_EVENTS}"
    else:
        count = shown_events if shown_events is not None else evidence.events
        events = f", {count:,.0f} events" if np.isfinite(count) else ""
    value, lower, upper = (v * scale for v in (evidence.value, evidence.lower, evidence.upper))
    interval = f"95% CI {lower:.3f} to {upper:.3f}" if evidence.has_interval else "no interval"
    return f"{value:.3f} ({interval}{events})"


def _verdict_text(evidence: CalibrationEvidence, bounds: tuple[float, float], rule: str, passed: bool) -> str:
    """Why the gate decided as it did, in words."""
    within = f"{bounds[0]:g} to {bounds[1]:g}"
    side = "above" if evidence.lower > bounds[1] else "below"
    if rule == "refuse_on_evidence":
        if passed:
            if bounds[0] <= evidence.value <= bounds[1]:
                return f"lies within {within}"
            return f"is not shown to lie outside {within}"
        return f"lies {side} {within} with its whole interval, evidence of miscalibration"
    if passed:
        return f"lies within {within} with its whole interval"
    return f"is not shown to lie within {within}"


def calibration_checks(
    challenger_metrics: pd.DataFrame,
    rules: PromotionSettings,
    *,
    shown_events: float | str | None = None,
) -> tuple[bool, list[str], dict[str, float]]:
    """The calibration gates: the challenger's observed/expected ratio and calibration slope, judged on evidence.

    Each gate reads the metric's 95% interval from the test metrics and applies
    ``rules.calibration_evidence`` (see :class:`~riskstrat.models.settings.PromotionSettings`).
    A table without intervals is judged on its point estimates. The gates need no champion,
    so the governance report can show them before promotion.

    Args:
        challenger_metrics: Tidy test metrics with ``lightgbm`` rows (``value``, and
            ``ci_low``, ``ci_high``, ``events`` when known).
        rules: Promotion settings.
        shown_events: The test rows' events as a report may show them (rounded for
            disclosure control, or a text such as ``"*"`` when suppressed). The O/E figures
            quoted are then those on the shown count, so the report gives one O/E for these
            rows (none when the count is suppressed); the decision is always taken on the
            exact figures.

    Returns:
        Whether both pass, one sentence per gate ("passed: ..." / "failed: ...") with the
        figures, the interval and the rule's error rates, and the numbers.
    """
    passed_all, reasons, values = True, [], {}
    rule = rules.calibration_evidence
    for metric, label, bounds_key, material_key, log_scale in CALIBRATION_GATES:
        bounds, material = getattr(rules, bounds_key), getattr(rules, material_key)
        evidence = _evidence(challenger_metrics, metric, log_scale)
        values[f"challenger_{metric}"] = evidence.value
        values[f"challenger_{metric}_ci_low"] = evidence.lower
        values[f"challenger_{metric}_ci_high"] = evidence.upper
        if not np.isfinite(evidence.value):
            passed_all = False
            reasons.append(f"failed: the {label} could not be computed on the test rows.")
            continue
        passed = gate_passes(evidence.lower, evidence.upper, bounds, rule)
        passed_all = passed_all and passed
        values[f"challenger_{metric}_gate_passed"] = float(passed)
        scale = 1.0
        if metric == "oe_ratio" and isinstance(shown_events, float | int) and evidence.events > 0:
            scale = shown_events / evidence.events
        rates, numbers = _error_rates_text(evidence, bounds, material, rule)
        values |= {f"challenger_{metric}_{k}": v for k, v in numbers.items()}
        note = ""
        if gate_passes(evidence.lower * scale, evidence.upper * scale, bounds, rule) != passed:
            note = " (figures from rounded counts; decided on the exact counts)"
        reasons.append(
            f"{'passed' if passed else 'failed'}: {label} {_figures(evidence, scale, shown_events)} "
            f"{_verdict_text(evidence, bounds, rule, passed)}{note}; {rates}."
        )
    return passed_all, reasons, values


def decide(
    challenger_metrics: pd.DataFrame,
    rules: PromotionSettings,
    *,
    champion_auroc: float | None = None,
    open_fairness_flags: Sequence[str] = (),
) -> tuple[bool, list[str], dict[str, Any]]:
    """Apply the gates to metrics already computed on the same test rows.

    Args:
        challenger_metrics: Tidy metrics with a ``model`` column holding ``lightgbm``
            and, when there is no champion, ``prior_utilisation`` and ``logistic_regression``.
        rules: Promotion settings.
        champion_auroc: The champion's AUROC on the same rows (None: no champion yet).
        open_fairness_flags: Fairness flags raised by the audit and not yet resolved.

    Returns:
        Whether every gate passed, the reasons (one per gate) and the numbers.
    """
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    passed = True
    auroc = metric_value(challenger_metrics, "auroc", LIGHTGBM)
    checks["challenger_auroc"] = auroc
    if champion_auroc is None:
        for baseline, label in (
            (PRIOR_UTILISATION, "prior-utilisation rule"),
            (LOGISTIC, "logistic regression"),
        ):
            base = metric_value(challenger_metrics, "auroc", baseline)
            checks[f"{baseline}_auroc"] = base
            paired = _paired_difference(challenger_metrics, baseline)
            paired = f"; {paired}" if paired else ""
            if auroc > base:
                reasons.append(f"passed: AUROC {auroc:.4f} beats the {label} ({base:.4f}{paired}).")
            else:
                passed = False
                reasons.append(
                    f"failed: AUROC {auroc:.4f} does not beat the {label} ({base:.4f}{paired}); "
                    "a first champion must beat both baselines."
                )
    else:
        checks["champion_auroc"] = champion_auroc
        floor = champion_auroc - rules.auroc_tolerance
        paired = _paired_difference(challenger_metrics, CHAMPION_MODEL)
        paired = f" ({paired})" if paired else ""
        if auroc >= floor:
            reasons.append(
                f"passed: AUROC {auroc:.4f} is not worse than the champion's {champion_auroc:.4f} "
                f"beyond the tolerance of {rules.auroc_tolerance:g}{paired}."
            )
        else:
            passed = False
            reasons.append(
                f"failed: AUROC {auroc:.4f} is worse than the champion's {champion_auroc:.4f} by "
                f"{champion_auroc - auroc:.4f}, more than the tolerance of {rules.auroc_tolerance:g}{paired}."
            )
    calibrated, calibration_reasons, calibration = calibration_checks(challenger_metrics, rules)
    passed = passed and calibrated
    reasons += calibration_reasons
    checks.update(calibration)
    # Flags arrive already filtered by configs/fairness.yaml accepted_flags (evaluation.fairness.open_flags).
    blocking = list(open_fairness_flags)
    checks["open_fairness_flags"] = blocking
    if blocking:
        passed = False
        reasons.append(
            f"failed: {len(blocking)} open fairness flag(s) not accepted by the governance board "
            "(accept one in configs/fairness.yaml with a reason): " + "; ".join(blocking)
        )
    else:
        reasons.append("passed: no open fairness flag.")
    return passed, reasons, checks


def promote(
    registration: Registration,
    test_features: pd.DataFrame,
    y_test: np.ndarray,
    challenger_metrics: pd.DataFrame,
    settings: ModelSettings,
    *,
    apply: bool | None = None,
    open_fairness_flags: Sequence[str] = (),
    challenger: RiskModel | None = None,
) -> PromotionDecision:
    """Judge the challenger against the champion on the same test rows; move the alias if it passes.

    Args:
        registration: The challenger's run and model version.
        test_features: The challenger's test rows (features).
        y_test: Their outcomes.
        challenger_metrics: The challenger's tidy test metrics, with the baselines
            (``TrainingResult.metrics``).
        settings: Model settings.
        apply: Move the champion alias when every gate passes; default ``promotion.auto_promote``.
        open_fairness_flags: Unresolved fairness flags (the audit's hook).
        challenger: The challenger in memory (loaded from the registry when omitted).

    Returns:
        The decision (also logged to the challenger's MLflow run and model version).
    """
    rules = settings.promotion
    apply = rules.auto_promote if apply is None else apply
    uri = registration.tracking_uri
    name = registration.model_name
    champion_version = alias_version(name, CHAMPION, uri)
    if champion_version == registration.version:
        champion_version = None  # re-judging the current champion: compare with the baselines
    champion_auroc = None
    metrics = challenger_metrics
    if champion_version is not None:
        if challenger is None:
            challenger = load_model(f"models:/{name}/{registration.version}", uri)
        champion = load_model(f"models:/{name}@{CHAMPION}", uri)
        missing = [c for c in champion.feature_names if c not in test_features.columns]
        if missing:
            return _record(
                registration,
                PromotionDecision(
                    name,
                    registration.version,
                    champion_version,
                    eligible=False,
                    promoted=False,
                    reasons=[
                        f"failed: the champion needs feature(s) {', '.join(missing[:5])} that the test rows "
                        "lack, so the two cannot be compared on the same rows."
                    ],
                    decided_at=_now(),
                ),
            )
        # Both on the same rows and the same bootstrap resamples.
        metrics = compare_models(
            y_test,
            {
                LIGHTGBM: challenger.predict_proba(test_features),
                CHAMPION_MODEL: champion.predict_proba(test_features),
            },
            top_fractions=settings.evaluation.top_fractions,
            capacity_share=settings.evaluation.capacity_share,
            n_boot=settings.evaluation.n_boot,
            seed=settings.evaluation.seed,
            reference=LIGHTGBM,
        )
        champion_auroc = metric_value(metrics, "auroc", CHAMPION_MODEL)
    eligible, reasons, checks = decide(
        metrics, rules, champion_auroc=champion_auroc, open_fairness_flags=open_fairness_flags
    )
    checks["test_rows"] = len(y_test)
    promoted = False
    if eligible and apply:
        with tracking(uri) as client:
            client.set_registered_model_alias(name, CHAMPION, registration.version)
        promoted = True
    decision = PromotionDecision(
        name, registration.version, champion_version, eligible, promoted, reasons, checks, _now()
    )
    return _record(registration, decision)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _record(registration: Registration, decision: PromotionDecision) -> PromotionDecision:
    """Tag the challenger's run and model version with the decision and save it as JSON."""
    payload = asdict(decision) | {"status": decision.status}
    stamp = decision.decided_at.replace(":", "").replace("-", "")
    with tracking(registration.tracking_uri) as client:
        client.set_tag(registration.run_id, "promotion_decision", decision.status)
        client.set_tag(registration.run_id, "promotion_reasons", " | ".join(decision.reasons)[:4900])
        client.set_tag(registration.run_id, "promotion_decided_at", decision.decided_at)
        client.log_dict(registration.run_id, payload, f"promotion/decision_{stamp}.json")
        if registration.version:
            client.set_model_version_tag(
                registration.model_name, registration.version, "promotion_decision", decision.status
            )
    return decision


def decision_json(decision: PromotionDecision) -> str:
    """The decision as JSON (for the command line)."""
    return json.dumps(asdict(decision) | {"status": decision.status}, indent=2, default=str)
