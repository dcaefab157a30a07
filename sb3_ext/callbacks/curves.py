"""``training_curves.png``: reward, ESS, roughness and coverage against environment steps."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes

# Figure + savefig without pyplot uses the Agg canvas and no global figure registry: safe in a
# headless training process and it leaves no figures open.
from matplotlib.figure import Figure

from sb3_ext.common.atomic import atomic_open

#: metrics.json layout: scalar name -> {"steps": [...], "values": [...]}
MetricsHistory = Mapping[str, Mapping[str, list]]


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` points (fewer at the start of the series)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def _series(metrics: MetricsHistory, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    entry = metrics.get(key)
    if not entry or not entry["steps"]:
        return None
    return np.asarray(entry["steps"]), np.asarray(entry["values"], dtype=float)


def _plot_lines(axes: Axes, metrics: MetricsHistory, lines: list[tuple[str, str]], title: str) -> None:
    axes.set_title(title)
    axes.set_xlabel("environment steps")
    drawn = False
    for key, label in lines:
        series = _series(metrics, key)
        if series is not None:
            axes.plot(*series, marker="." if series[0].size < 30 else None, label=label)
            drawn = True
    if drawn:
        axes.legend(fontsize="small")
    else:
        axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)


def plot_training_curves(metrics: MetricsHistory, path: str | os.PathLike, window: int = 10) -> None:
    """Draw the four panels from a metrics history and write the PNG atomically.

    :param metrics: scalar name -> {"steps", "values"}, as kept by RunArtifacts.
    :param path: output PNG path.
    :param window: moving-average window (in logged points) for the training reward.
    """
    figure = Figure(figsize=(11, 7.5))
    # Fixed margins: a layout engine would re-measure every label, which dominates the cost.
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.95, hspace=0.35, wspace=0.22)
    reward_axes, ess_axes, roughness_axes, coverage_axes = figure.subplots(2, 2).ravel()

    reward_axes.set_title("Reward")
    reward_axes.set_xlabel("environment steps")
    train_reward = _series(metrics, "episode/reward") or _series(metrics, "rollout/ep_rew_mean")
    eval_reward = _series(metrics, "eval/mean_reward")
    if train_reward is not None:
        steps, values = train_reward
        reward_axes.plot(steps, values, alpha=0.35, label="training episodes")
        reward_axes.plot(steps, moving_average(values, window), label=f"moving average ({window})")
    if eval_reward is not None:
        reward_axes.plot(*eval_reward, "o-", label="evaluation (deterministic)")
    if train_reward is None and eval_reward is None:
        reward_axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=reward_axes.transAxes)
    else:
        reward_axes.legend(fontsize="small")

    _plot_lines(
        ess_axes, metrics, [("train/ess_mean", "training (mean)"), ("eval/mean_ess", "evaluation")], "Effective sample size"
    )
    low, high = _series(metrics, "train/ess_min"), _series(metrics, "train/ess_max")
    if low is not None and high is not None and low[0].size == high[0].size:
        ess_axes.fill_between(low[0], low[1], high[1], alpha=0.2)
    ess_axes.set_ylim(0.0, 1.05)
    _plot_lines(
        roughness_axes,
        metrics,
        [("morphology/roughness_mean", "training episodes"), ("eval/final_roughness", "evaluation")],
        "Final roughness W",
    )
    _plot_lines(
        coverage_axes,
        metrics,
        [("morphology/coverage_mean", "training episodes"), ("eval/final_coverage", "evaluation")],
        "Final coverage",
    )
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=90)
