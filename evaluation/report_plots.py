"""The governance report's plots, drawn from the disclosed payload only.

Each ``*_figure`` function returns a matplotlib Figure sized for print: no wider than
an A4 page's text (:data:`MAX_WIDTH_IN`), every text at least :data:`MIN_FONT_PT` points
when the image is shown at its natural size (the report sets each image's width in
inches, see :func:`encode`), plain group labels, and titles that never overlap
(constrained layout, long titles wrapped). :func:`figures` draws them all;
:func:`encode` turns one into an inline PNG.
"""

from __future__ import annotations

import base64
import io
import math
import struct
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from riskstrat.evaluation.disclosure import SUPPRESSED
from riskstrat.evaluation.fairness import ALL_MDTS, OVERALL
from riskstrat.evaluation.groups import group_label, is_intersection, is_place

MAX_WIDTH_IN = 6.8
"""Widest figure, in inches: an A4 page's text width with the report's print margins."""

MIN_FONT_PT = 9
"""Smallest text on a plot, in points at print size."""

MAX_PANELS = 12
"""Groupings with more groups than this (places, intersections) get tables, not small multiples."""

DPI = 150
"""Pixels per inch of the embedded PNGs (sharp when printed)."""

BLUE, GREY, ORANGE = "#1f5fa8", "#aaaaaa", "#c26a00"

METRIC_NAMES = {"oe_ratio": "Observed / expected", "auroc": "Ranking (AUROC)"}


@dataclass(frozen=True)
class Image:
    """An inline PNG and the width, in inches, it is shown at (so its text prints at its point size)."""

    data: str
    width_in: float


def is_number(value: Any) -> bool:
    """True for a finite int or float (not a bool, None or ``"*"``)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))
    )


def short_label(label: str) -> str:
    """A grouping's label without its parenthesised detail: "Deprivation (IMD ...)" -> "Deprivation"."""
    return label.split(" (")[0]


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def encode(fig: Figure) -> Image:
    """The figure as base64 PNG with its printed width; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.04)
    plt.close(fig)
    data = buffer.getvalue()
    width_px = struct.unpack(">I", data[16:20])[0]  # the PNG header's IHDR width
    return Image(base64.b64encode(data).decode("ascii"), round(min(width_px / DPI, MAX_WIDTH_IN), 2))


def panel_groupings(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Groupings drawn in the forest plot: not intersections, and at most :data:`MAX_PANELS` groups."""
    return [
        g for g in payload["groupings"] if not is_intersection(g["name"]) and len(g["groups"]) <= MAX_PANELS
    ]


def calibration_groupings(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Groupings drawn as calibration small multiples: those of the forest plot other than places.

    A place's calibration is its observed / expected, in the tables and the forest plot; its
    curves would add a page for each few places.
    """
    return [g for g in panel_groupings(payload) if not is_place(g["name"])]


def calibration_figure(payload: dict[str, Any], grouping: str) -> Figure | None:
    """Calibration curves of the groups in ``grouping`` whose curves are shown, everyone in grey.

    Returns:
        The figure, or None when no group's curve can be shown (all withheld or too small).
    """
    curves = [c for c in payload["calibration_curves"] if c["grouping"] == grouping and not c.get("withheld")]
    if not curves:
        return None
    overall = next(c for c in payload["calibration_curves"] if c["grouping"] == OVERALL)
    cols = min(4, len(curves))
    rows = math.ceil(len(curves) / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(1.68 * cols, 1.75 * rows + 0.4),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    shown = [
        value
        for c in [overall, *curves]
        for b in c["bins"]
        for value in (b["mean_risk"], b["observed_rate"])
        if is_number(value)
    ]
    top = max([*shown, 0.05]) * 1.05
    for ax, curve in zip(axes.flat, curves, strict=False):
        ax.plot([0, top], [0, top], color="#999", lw=0.8, ls="--")
        for data, colour, width in ((overall, GREY, 1.0), (curve, BLUE, 1.6)):
            points = [b for b in data["bins"] if is_number(b["mean_risk"]) and is_number(b["observed_rate"])]
            ax.plot(
                [b["mean_risk"] for b in points],
                [b["observed_rate"] for b in points],
                marker="o",
                ms=3,
                color=colour,
                lw=width,
            )
        ax.set_title(_wrap(curve["label"], 20), fontsize=MIN_FONT_PT)
        ax.tick_params(labelsize=MIN_FONT_PT)
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.yaxis.set_major_locator(MaxNLocator(3))
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
    for ax in list(axes.flat)[len(curves) :]:
        ax.axis("off")
    fig.supxlabel("predicted risk", fontsize=MIN_FONT_PT)
    fig.supylabel("observed rate", fontsize=MIN_FONT_PT)
    return fig


def forest_figure(payload: dict[str, Any], metrics: dict[str, tuple[float, float] | None]) -> Figure:
    """Estimate and 95% interval of each metric for every group of the small-multiple groupings.

    Args:
        payload: The disclosed report payload.
        metrics: Metric -> its tolerance band (shaded), or None; one panel each, side by side.
    """
    names = {g["name"]: short_label(g["label"]) for g in panel_groupings(payload)}
    rows = [r for r in payload["performance"] if r["grouping"] == OVERALL or r["grouping"] in names]
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(MAX_WIDTH_IN - 0.2, 0.155 * len(rows) + 0.9),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    labels = [
        "Everyone"
        if r["grouping"] == OVERALL
        else textwrap.shorten(f"{names[r['grouping']]}: {r['label']}", 44, placeholder="...")
        for r in rows
    ]
    for ax, (metric, band) in zip(axes[0], metrics.items(), strict=True):
        for i, r in enumerate(rows):
            m = r["metrics"][metric]
            if is_number(m["value"]) and is_number(m["lower"]) and is_number(m["upper"]):
                ax.errorbar(
                    m["value"],
                    i,
                    xerr=[[m["value"] - m["lower"]], [m["upper"] - m["value"]]],
                    fmt="o",
                    color=BLUE,
                    ms=3,
                    capsize=2,
                    lw=1,
                )
            else:
                ax.text(
                    0.02,
                    i,
                    "too few to judge",
                    transform=ax.get_yaxis_transform(),
                    fontsize=MIN_FONT_PT,
                    va="center",
                    color="#666",
                )
        if band:
            ax.axvspan(band[0], band[1], color="#2a9d3a", alpha=0.12, lw=0)
        ax.grid(axis="x", color="#e5e5e5", lw=0.6)
        ax.set_title(
            METRIC_NAMES.get(metric, metric) + ("\n(green: tolerance)" if band else ""), fontsize=MIN_FONT_PT
        )
        ax.tick_params(labelsize=MIN_FONT_PT)
    axes[0][0].set_yticks(range(len(rows)), labels, fontsize=MIN_FONT_PT)
    axes[0][0].set_ylim(len(rows) - 0.5, -0.5)
    fig.supxlabel("estimate with its 95% interval", fontsize=MIN_FONT_PT)
    return fig


def list_shares_figure(payload: dict[str, Any], groupings: tuple[str, ...]) -> Figure:
    """Each group's share of the lists next to its share of the population and of the outcomes.

    One panel per grouping, side by side, sharing the share axis.
    """
    labels = {g["name"]: short_label(g["label"]) for g in payload["groupings"]}
    fig, axes = plt.subplots(
        1, len(groupings), figsize=(MAX_WIDTH_IN - 0.3, 2.9), squeeze=False, sharey=True, layout="constrained"
    )
    for ax, grouping in zip(axes[0], groupings, strict=True):
        rows = [r for r in payload["lists"] if r["mdt"] == ALL_MDTS and r["grouping"] == grouping]
        x = np.arange(len(rows))
        for offset, key, colour, name in (
            (-0.27, "share_of_population", GREY, "population"),
            (0.0, "share_of_outcomes", ORANGE, "outcomes (need)"),
            (0.27, "share_of_list", BLUE, "lists"),
        ):
            values = [r[key] if is_number(r[key]) else 0.0 for r in rows]
            ax.bar(x + offset, values, width=0.27, color=colour, label=name)
            for position, r in zip(x + offset, rows, strict=True):
                if r[key] == SUPPRESSED:  # no bar: marked, so it does not read as nobody
                    ax.text(position, 0, "*", ha="center", va="bottom", fontsize=MIN_FONT_PT, color=colour)
        ax.set_xticks(x, [_wrap(r["label"], 8) for r in rows], fontsize=MIN_FONT_PT)
        ax.tick_params(axis="y", labelsize=MIN_FONT_PT)
        ax.set_title(labels.get(grouping, grouping), fontsize=MIN_FONT_PT + 1)
    axes[0][0].set_ylabel("share", fontsize=MIN_FONT_PT)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=MIN_FONT_PT, loc="outside lower center", ncols=3)
    return fig


def need_figure(payload: dict[str, Any], grouping: str) -> Figure:
    """Mean realised need by predicted-risk band for each group, one panel per need measure."""
    need = payload["need_at_equal_risk"]
    measures = payload["settings"]["need_measures"]
    cols = 2
    rows = math.ceil(len(measures) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(MAX_WIDTH_IN - 0.3, 1.65 * rows + 0.6), squeeze=False, layout="constrained"
    )
    band_labels = [label.split("th")[0] for label in need["band_labels"]]
    groups = next(g for g in payload["groupings"] if g["name"] == grouping)["groups"]
    for ax, (measure, label) in zip(axes.flat, measures.items(), strict=False):
        for group in groups:
            points = [
                b
                for b in need["bands"]
                if b["grouping"] == grouping
                and b["group"] == group
                and b["measure"] == measure
                and b["status"] == "ok"
                and is_number(b["mean"])
            ]
            if points:
                ax.plot(
                    [b["band_index"] for b in points],
                    [b["mean"] for b in points],
                    marker="o",
                    ms=3,
                    label=textwrap.shorten(group_label(grouping, group), 24, placeholder="..."),
                )
        ax.set_xticks(range(len(band_labels)), band_labels, fontsize=MIN_FONT_PT)
        ax.tick_params(labelsize=MIN_FONT_PT)
        ax.set_title(label, fontsize=MIN_FONT_PT + 1)
    for ax in list(axes.flat)[len(measures) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=MIN_FONT_PT, loc="outside lower center", ncols=3)
    for ax in axes[-1]:
        ax.set_xlabel("band of predicted risk (percentiles)", fontsize=MIN_FONT_PT)
    return fig


def impact_figure(impact: dict[str, Any]) -> Figure | None:
    """Outcome rate by binned distance to the cut-off either side, with the local linear fits.

    Drawn from the impact payload alone (:func:`riskstrat.evaluation.impact.impact_payload`):
    the disclosed bin rates (suppressed bins left out) and the fitted lines' end points.

    Returns:
        The figure, or None without an estimate.
    """
    rd = (impact or {}).get("rd")
    if not rd:
        return None
    scale = 100.0 if impact.get("running_variable") == "risk" else 1.0
    fig, ax = plt.subplots(figsize=(5.6, 2.9), layout="constrained")
    for side, colour in (("below", GREY), ("above", BLUE)):
        points = [b for b in rd["bins"] if b["side"] == side and is_number(b["rate"])]
        ax.scatter(
            [scale * b["x"] for b in points],
            [100 * b["rate"] for b in points],
            s=14,
            color=colour,
            label="not listed" if side == "below" else "listed",
            zorder=3,
        )
        line = [pt for pt in rd["fit"][side] if is_number(pt[1])]
        if len(line) == 2:
            ax.plot([scale * pt[0] for pt in line], [100 * pt[1] for pt in line], color=colour, lw=2)
    ax.axvline(0, color="#666", lw=0.8, ls="--")
    unit = (
        "risk minus the cut-off's risk (percentage points)" if scale == 100.0 else "places from the cut-off"
    )
    ax.set_xlabel(f"distance to the cut-off: {unit}", fontsize=MIN_FONT_PT)
    ax.set_ylabel("outcome rate (%)", fontsize=MIN_FONT_PT)
    ax.tick_params(labelsize=MIN_FONT_PT)
    ax.legend(fontsize=MIN_FONT_PT, loc="best", frameon=False)
    return fig


def drawn_groupings(payload: dict[str, Any], plotted: tuple[str, ...]) -> tuple[str, ...]:
    """The ``plotted`` groupings the audit holds: one left out (e.g. no social care columns) is skipped."""
    present = {g["name"] for g in payload["groupings"]}
    return tuple(name for name in plotted if name in present)


def figures(payload: dict[str, Any], plotted: tuple[str, ...]) -> Iterator[tuple[str, Figure]]:
    """Every plot of the report with its name, drawn one at a time (close each when done with it).

    Calibration is drawn for the small-multiple groupings with a curve to show.

    Args:
        payload: The disclosed report payload.
        plotted: Groupings whose list shares and need at equal risk are drawn (those the
            audit left out are skipped: :func:`drawn_groupings`).
    """
    plotted = drawn_groupings(payload, plotted)
    tol = payload["settings"]["tolerances"]
    for g in calibration_groupings(payload):
        fig = calibration_figure(payload, g["name"])
        if fig is not None:
            yield f"calibration_{g['name']}", fig
    yield "forest", forest_figure(payload, {"oe_ratio": (tol["oe_low"], tol["oe_high"]), "auroc": None})
    if plotted:
        yield "list_shares", list_shares_figure(payload, plotted)
    for grouping in plotted:
        yield f"need_{grouping}", need_figure(payload, grouping)
    impact = impact_figure(payload.get("impact") or {})
    if impact is not None:
        yield "impact", impact
