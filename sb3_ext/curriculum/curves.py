"""The lattice curriculum's training-curve panels: reward, effective sample size, roughness, coverage."""

from __future__ import annotations

from sb3_ext.callbacks.curves import REWARD_PANEL, CurvePanel

#: What ``training_curves.png`` of a curriculum stage shows (the keys of ESSEarlyStopping,
#: MorphologyLogger and the evaluations of the episode-end infos in ``FINAL_INFO_KEYS``).
LATTICE_PANELS: tuple[CurvePanel, ...] = (
    REWARD_PANEL,
    CurvePanel(
        "Effective sample size",
        (("train/ess_mean", "training (mean)"), ("eval/mean_ess", "evaluation")),
        band=("train/ess_min", "train/ess_max"),
        ylim=(0.0, 1.05),
    ),
    CurvePanel(
        "Final roughness W",
        (("morphology/roughness_mean", "training episodes"), ("eval/final_roughness", "evaluation")),
    ),
    CurvePanel(
        "Final coverage",
        (("morphology/coverage_mean", "training episodes"), ("eval/final_coverage", "evaluation")),
    ),
)
