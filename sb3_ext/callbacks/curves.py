"""``training_curves.png``: panels of logged scalars against environment steps, for any SB3 model.

A panel names the logger keys it draws (:class:`CurvePanel`); :data:`DEFAULT_PANELS` cover what
SB3 and this package's algorithms log (reward, losses, exploration, value estimates). An
environment with metrics of its own passes its own panels (the lattice curriculum's are in
:mod:`sb3_ext.curriculum.curves`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes

# Figure + savefig without pyplot uses the Agg canvas and no global figure registry: safe in a
# headless training process and it leaves no figures open.
from matplotlib.figure import Figure

from sb3_ext.common.atomic import atomic_open

#: metrics.json layout: scalar name -> {"steps": [...], "values": [...]}
MetricsHistory = Mapping[str, Mapping[str, list]]


@dataclass(frozen=True)
class CurvePanel:
    """One panel of the figure: the logger keys it draws and how.

    :param title: the panel's title.
    :param lines: ``(key, label)`` pairs; a key may list alternatives as ``"a|b"`` (the first one
        logged is drawn, e.g. a callback's episode reward, else SB3's ``rollout/ep_rew_mean``).
    :param smoothed: keys (as written in ``lines``) drawn faintly with a moving average on top.
    :param band: ``(low key, high key)`` drawn as a shaded range.
    :param ylim: fixed y range, or None.
    """

    title: str
    lines: tuple[tuple[str, str], ...]
    smoothed: tuple[str, ...] = ()
    band: tuple[str, str] | None = None
    ylim: tuple[float, float] | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CurvePanel:
        """A panel from plain data (an rl-zoo3 YAML entry): lists become tuples."""
        unknown = set(values) - {"title", "lines", "smoothed", "band", "ylim"}
        if unknown or "title" not in values or "lines" not in values:
            raise ValueError(
                f"curve panel {dict(values)!r}: expected keys title, lines (and optionally smoothed, band, ylim)"
            )
        return cls(
            title=str(values["title"]),
            lines=tuple((str(key), str(label)) for key, label in values["lines"]),
            smoothed=tuple(values.get("smoothed", ())),
            band=None if values.get("band") is None else (str(values["band"][0]), str(values["band"][1])),
            ylim=None if values.get("ylim") is None else (float(values["ylim"][0]), float(values["ylim"][1])),
        )


#: Reward: the training episodes (with a moving average) and the deterministic evaluations.
REWARD_PANEL = CurvePanel(
    "Reward",
    (("episode/reward|rollout/ep_rew_mean", "training episodes"), ("eval/mean_reward", "evaluation (deterministic)")),
    smoothed=("episode/reward|rollout/ep_rew_mean",),
)

#: Panels for any SB3 model; each algorithm fills those it logs (a panel with none says so).
DEFAULT_PANELS: tuple[CurvePanel, ...] = (
    REWARD_PANEL,
    CurvePanel(
        "Loss",
        (
            ("train/loss", "loss"),
            ("train/policy_gradient_loss|train/policy_loss|train/actor_loss", "policy"),
            ("train/value_loss|train/critic_loss", "value / critic"),
        ),
    ),
    CurvePanel(
        "Exploration",
        (
            ("rollout/exploration_rate", "epsilon"),
            ("train/ent_coef", "entropy coefficient"),
            ("train/std", "action std"),
            ("train/noise_sigma", "noise sigma"),
        ),
    ),
    CurvePanel(
        "Value estimates",
        (
            ("train/q_mean", "mean Q of taken actions"),
            ("train/return_mean", "mean return"),
            ("train/explained_variance", "explained variance"),
        ),
    ),
)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` points (fewer at the start of the series)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def _series(metrics: MetricsHistory, keys: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The first of the ``|``-separated keys that has points."""
    for key in keys.split("|"):
        entry = metrics.get(key)
        if entry and entry["steps"]:
            return np.asarray(entry["steps"]), np.asarray(entry["values"], dtype=float)
    return None


def _draw_panel(axes: Axes, metrics: MetricsHistory, panel: CurvePanel, window: int) -> None:
    axes.set_title(panel.title)
    axes.set_xlabel("environment steps")
    drawn = False
    for key, label in panel.lines:
        series = _series(metrics, key)
        if series is None:
            continue
        steps, values = series
        if key in panel.smoothed:
            axes.plot(steps, values, alpha=0.35, label=label)
            axes.plot(steps, moving_average(values, window), label=f"moving average ({window})")
        elif key.startswith("eval/"):
            axes.plot(steps, values, "o-", label=label)
        else:
            axes.plot(steps, values, marker="." if steps.size < 30 else None, label=label)
        drawn = True
    if panel.band is not None:
        low, high = _series(metrics, panel.band[0]), _series(metrics, panel.band[1])
        if low is not None and high is not None and low[0].size == high[0].size:
            axes.fill_between(low[0], low[1], high[1], alpha=0.2)
    if panel.ylim is not None:
        axes.set_ylim(*panel.ylim)
    if drawn:
        axes.legend(fontsize="small")
    else:
        axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)


def plot_training_curves(
    metrics: MetricsHistory,
    path: str | os.PathLike,
    panels: Sequence[CurvePanel] = DEFAULT_PANELS,
    window: int = 10,
) -> Figure:
    """Draw ``panels`` (two per row) from a metrics history and write the PNG atomically.

    :param metrics: scalar name -> {"steps", "values"}, as kept by RunArtifacts.
    :param path: output PNG path.
    :param panels: what to draw; see :class:`CurvePanel`.
    :param window: moving-average window (in logged points) of the smoothed lines.
    :return: the figure, one axes per panel (then hidden fillers), for inspection.
    """
    if not panels:
        raise ValueError("plot_training_curves: panels is empty; pass at least one CurvePanel")
    rows = math.ceil(len(panels) / 2)
    figure = Figure(figsize=(11, 3.75 * rows))
    # Fixed margins: a layout engine would re-measure every label, which dominates the cost.
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.95, hspace=0.35, wspace=0.22)
    all_axes = np.atleast_1d(figure.subplots(rows, 2)).ravel()
    for axes, panel in zip(all_axes, panels, strict=False):
        _draw_panel(axes, metrics, panel, window)
    for axes in all_axes[len(panels) :]:
        axes.set_visible(False)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=90)
    return figure
