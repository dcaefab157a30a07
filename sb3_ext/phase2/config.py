"""Phase 2 hyperparameters, their validation, and the warm-up schedule they define.

Stages are counted in environment steps (``total_steps``), each lasting the given number of
steps after the previous one ends:

====  ==============================  ===================================  ========  ==========
 #    name                            networks trained                     beta_r    lr
====  ==============================  ===================================  ========  ==========
 0    ``v_h_e``                       V_h^e                                0         constant
 1    ``x_h``                         + X_h                                0         constant
 2    ``u_r``  (skipped without net)  + U_r                                0         constant
 3    ``q_r``                         + Q_r (and V_r when it is a network) 0         constant
 4    ``ramp``                        all                                  sigmoid   constant
 5    ``full``                        all                                  beta_r    1/sqrt(t)
====  ==============================  ===================================  ========  ==========
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sb3_ext.phase2.power import PowerParams

STAGE_NAMES = ("v_h_e", "x_h", "u_r", "q_r", "ramp", "full")
RAMP_STAGE = 4
FULL_STAGE = 5


@dataclass(frozen=True)
class Phase2Config(PowerParams):
    """Every Phase 2 hyperparameter beyond SB3's own, checked at construction.

    The fields are :class:`~sb3_ext.phase2.phase2.Phase2`'s arguments of the same names and
    are documented there once; the power-metric ones come from :class:`PowerParams`.
    """

    warmup_v_h_e_steps: int = 1000
    warmup_x_h_steps: int = 1000
    warmup_u_r_steps: int = 1000
    warmup_q_r_steps: int = 1000
    beta_r_rampup_steps: int = 2000
    lr_decay_steps: int = 1000
    u_r_use_network: bool = False
    u_r_sample_humans: int | None = None
    v_r_use_network: bool = False
    x_h_batch_size: int | None = None
    model_based_targets: bool = True
    expand_successors: bool = True
    target_update_interval: int = 100
    max_grad_norm: float = 10.0
    exploration_initial_eps: float = 0.3
    exploration_final_eps: float = 0.01
    exploration_fraction: float = 0.5
    directed_exploration: bool = False
    clear_buffer_at_ramp: bool = True
    uniform_state_fraction: float = 0.0
    q_r_advantage_weight: float = 1.0
    weight_averaging_tau: float = 0.0
    goal_resample_prob: float = 0.01
    n_actors: int = 1
    actor_sync_freq: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("warmup_v_h_e_steps", "warmup_x_h_steps", "warmup_u_r_steps", "warmup_q_r_steps",
                     "beta_r_rampup_steps"):
            _check_int(name, getattr(self, name), 0)
        for name in ("lr_decay_steps", "target_update_interval", "n_actors", "actor_sync_freq"):
            _check_int(name, getattr(self, name), 1)
        for name in ("u_r_sample_humans", "x_h_batch_size"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        for name in ("u_r_use_network", "v_r_use_network", "model_based_targets", "expand_successors",
                     "directed_exploration", "clear_buffer_at_ramp"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: {getattr(self, name)!r}, expected true or false")
        _check_float("max_grad_norm", self.max_grad_norm, 0.0, math.inf, "> 0 and finite", open_low=True)
        _check_float("q_r_advantage_weight", self.q_r_advantage_weight, 0.0, math.inf, "> 0 and finite", open_low=True)
        for name in ("exploration_initial_eps", "exploration_final_eps", "goal_resample_prob", "uniform_state_fraction",
                     "weight_averaging_tau"):
            _check_float(name, getattr(self, name), 0.0, 1.0, "in [0, 1]")
        _check_float("exploration_fraction", self.exploration_fraction, 0.0, 1.0, "in (0, 1]", open_low=True)
        if self.directed_exploration and self.n_actors > 1:
            raise ValueError(
                f"directed_exploration: True with n_actors {self.n_actors}, expected n_actors 1 (the actor "
                "processes explore uniformly: they do not see the learner's visit counts)"
            )
        if self.uniform_state_fraction > 0.0 and not self.model_based_targets:
            raise ValueError(
                f"uniform_state_fraction: {self.uniform_state_fraction} with model_based_targets false, expected 0 "
                "(states drawn from the successor tables have no sampled transition to learn from)"
            )
        if self.q_r_advantage_weight != 1.0 and not self.model_based_targets:
            raise ValueError(
                f"q_r_advantage_weight: {self.q_r_advantage_weight} with model_based_targets false, expected 1 "
                "(a sampled target trains one move only, so there is no difference between moves to weight)"
            )
        if self.exploration_final_eps > self.exploration_initial_eps:
            raise ValueError(
                f"exploration_final_eps: {self.exploration_final_eps} is above exploration_initial_eps "
                f"{self.exploration_initial_eps}, expected epsilon to decay"
            )

    # ------------------------------------------------------------------ schedule
    @property
    def stage_ends(self) -> tuple[int, ...]:
        """Cumulative env step at which stages 0..4 end (stage 5 never ends)."""
        lengths = (
            self.warmup_v_h_e_steps,
            self.warmup_x_h_steps,
            self.warmup_u_r_steps if self.u_r_use_network else 0,
            self.warmup_q_r_steps,
            self.beta_r_rampup_steps,
        )
        return tuple(sum(lengths[: i + 1]) for i in range(len(lengths)))

    def stage(self, step: int) -> int:
        """The stage index at env step ``step``."""
        return next((i for i, end in enumerate(self.stage_ends) if step < end), FULL_STAGE)

    def active_networks(self, step: int) -> frozenset[str]:
        """Networks that receive gradient updates at ``step``."""
        stage = self.stage(step)
        active = {"v_h_e"}
        if stage >= 1:
            active.add("x_h")
        if stage >= 2 and self.u_r_use_network:
            active.add("u_r")
        if stage >= 3:
            active.add("q_r")
            if self.v_r_use_network:
                active.add("v_r")
        return frozenset(active)

    def effective_beta_r(self, step: int) -> float:
        """0 during warm-up, a sigmoid ramp normalised to hit exactly 0 and beta_r at its ends, then beta_r."""
        ramp_start, ramp_end = self.stage_ends[RAMP_STAGE - 1], self.stage_ends[RAMP_STAGE]
        if step < ramp_start:
            return 0.0
        if step >= ramp_end:
            return self.beta_r
        x = (step - ramp_start) / (ramp_end - ramp_start)
        lo, hi = _sigmoid(-3.0), _sigmoid(3.0)
        return self.beta_r * (_sigmoid(6.0 * x - 3.0) - lo) / (hi - lo)

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate: 1 until the full stage, then 1/sqrt decay."""
        full_start = self.stage_ends[-1]
        if step < full_start:
            return 1.0
        return 1.0 / math.sqrt(1.0 + (step - full_start) / self.lr_decay_steps)

    def exploration_rate(self, progress: float) -> float:
        """Epsilon after a fraction ``progress`` of the run: linear decay, then the floor."""
        frac = min(progress / self.exploration_fraction, 1.0)
        return self.exploration_initial_eps + frac * (self.exploration_final_eps - self.exploration_initial_eps)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _check_int(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: {value!r}, expected an integer >= {low}")


def _check_float(name: str, value: object, low: float, high: float, expected: str, open_low: bool = False) -> None:
    ok = False
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        raise ValueError(f"{name}: {value!r}, expected a number {expected}")
