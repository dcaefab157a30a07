"""Phase2 settings for ``AssistGrid-v0``'s larger named maps, derived from the zoo entry.

``hyperparams/phase2.yml`` holds one entry per env id (rl-zoo3's layout), tuned on the rock map
(horizon 6, 20k env steps). The larger maps (horizon 16, up to 5,739 states) need longer
warm-up stages and more env steps: each map's budget below stretches the entry's warm-up
stages by a factor and sets what else differs. The Phase 2 benchmark
(``benchmarks/bench_phase2_maps.py``) and the large-map test train with these settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sb3_ext.zoo.config import read_zoo_entry

# The zoo entry's settings counted in env steps: stretched together, so the stages keep their proportions.
STAGE_KEYS = ("warmup_v_h_e_steps", "warmup_x_h_steps", "warmup_q_r_steps", "beta_r_rampup_steps", "lr_decay_steps")


@dataclass(frozen=True)
class MapBudget:
    """One map's training budget: env steps, the warm-up stretch factor, and settings over the zoo entry's."""

    steps: int
    stretch: float
    settings: dict[str, Any] = field(default_factory=dict)


# rocks and two_humans (horizon 16, 1,940 and 5,739 states): V_h^e within 5% needs Q_r within
# about 0.5-1%. Four gradient steps per env step, half of each batch drawn over every known
# state, Q_r's loss weighting the differences between moves, and the final networks an average
# of the weights over the last ~5k updates (a time constant of about a sixteenth of the full
# stage; 20k was worse on all six runs measured). With [128, 128] networks that left the worst
# V_h^e at 0.038-0.060 over seeds 0-2 of both maps, mostly the networks' misfit to their own
# robot's values; [256, 256] networks bring it to 0.006-0.018 and Q_r to 0.2-0.8%, at about
# twice the CPU time (docs/phase2.md).
LARGE_MAP_SETTINGS = {"gradient_steps": 4, "uniform_state_fraction": 0.5, "q_r_advantage_weight": 10.0,
                      "weight_averaging_tau": 2e-4, "policy_kwargs": {"net_arch": [256, 256]}}

MAP_BUDGETS = {
    "rock": MapBudget(40_000, 4.0),
    "rocks": MapBudget(150_000, 15.0, LARGE_MAP_SETTINGS),
    # At beta_r = 10 the soft robot is nearly uniform on this map, so the value of walking toward
    # the key (which pays only if the robot keeps walking) is tiny: the exact greedy robot's first
    # moves beat staying by 1.7e-6 to 2e-4 of Q_r (relative), below what any learned Q_r can resolve
    # (float32 itself resolves about 1e-7). At beta_r = 100 the soft robot follows the detour, those
    # margins are about 0.13, and the exact greedy robot's reach is the same (0.546). Even there a
    # state's moves differ by ~10% of Q_r while Q_r spans -1e-10 to -54 across states, so Q_r's loss
    # weights the differences between moves; and half of each batch is drawn uniformly over the
    # known states, so that the end of the detour, which the robot rarely reaches, is fitted too.
    # At beta_r = 100 pi_r moves by 1.01^100 for a 1% change in Q_r: four gradient steps per env
    # step and the weights averaged over the last ~10k updates bring Q_r to 0.7-2.9% and the
    # values within 5% on seeds 0-2, where one step without averaging left V_h^e 0.20-0.68 off.
    # Seed 0 still misses one goal's reach, through moves within 1e-4 of the best Q_r (docs/phase2.md).
    "key_door_big": MapBudget(120_000, 6.0, {"beta_r": 100.0, "uniform_state_fraction": 0.5,
                                             "q_r_advantage_weight": 10.0, "gradient_steps": 4,
                                             "weight_averaging_tau": 1e-4,
                                             "policy_kwargs": {"net_arch": [256, 256]}}),
    "two_humans": MapBudget(150_000, 15.0, LARGE_MAP_SETTINGS),
}


def phase2_map_settings(map_name: str, stretch: float | None = None) -> dict[str, Any]:
    """Phase2 keyword arguments for ``map_name``: the zoo entry's, its warm-up stretched by the
    map's factor (or ``stretch``), then the map's own settings."""
    if map_name not in MAP_BUDGETS:
        raise ValueError(f"map_name: {map_name!r}, expected one of {', '.join(sorted(MAP_BUDGETS))}")
    budget = MAP_BUDGETS[map_name]
    factor = budget.stretch if stretch is None else stretch
    settings = read_zoo_entry("phase2", "AssistGrid-v0").model_kwargs
    return {**settings, **{key: int(settings[key] * factor) for key in STAGE_KEYS}, **budget.settings}
