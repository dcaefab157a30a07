"""The two formulas of the power metric that both the exact solver and the learner use.

Keeping them in one place means the learned networks are compared with an exact solution of
exactly the same equations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch as th


def power_law_log_probs(q_r: th.Tensor, beta_r: float | th.Tensor) -> th.Tensor:
    """log pi_r over the last dimension, pi_r(a) proportional to (-Q_r(a))^(-beta_r) (Eq. 5).

    Computed as a log-softmax of ``-beta_r * log(-Q_r)``, which never overflows even for large
    beta_r; beta_r = 0 gives the uniform policy. Requires Q_r < 0.
    """
    return th.log_softmax(-beta_r * th.log(-q_r), dim=-1)


def robot_reward(x_h: th.Tensor, xi: float, eta: float) -> th.Tensor:
    """U_r = -(mean_h X_h^(-xi))^eta over the last dimension (humans) (Eq. 8)."""
    return -((x_h ** (-xi)).mean(dim=-1) ** eta)


CONVENTIONS = ("empo", "plain")


@dataclass(frozen=True)
class PowerParams:
    """Parameters of the power metric and the robot policy (shared by solver and learner).

    :param beta_r: the robot's power-law exponent (0: uniform robot)
    :param gamma_h: the humans' discount factor in V_h^e
    :param gamma_r: the robot's discount factor in Q_r
    :param zeta: risk aversion across goals, X_h = E_g[V_h^e^zeta]
    :param xi: inequality aversion across humans
    :param eta: intertemporal inequality aversion
    :param conventions: ``"empo"`` (default), the EMPO reference implementation's
        (github mensch72/empo, backward induction): V_r = dw U_r + pi_r . Q_r with the
        per-step reward weight dw = (1 - gamma_r) / (-ln gamma_r) (1 at gamma_r = 1), and
        terminal V_r = -1e-10. ``"plain"``: V_r = U_r + pi_r . Q_r and terminal V_r = -1 (the
        largest value U_r can take, since X_h <= 1 makes U_r <= -1), this package's behaviour
        before the option existed.
    :param terminal_v_r: V_r at terminal states (must be < 0 so that Q_r < 0 there); None takes
        the conventions' value
    """

    beta_r: float = 10.0
    gamma_h: float = 0.99
    gamma_r: float = 0.99
    zeta: float = 2.0
    xi: float = 1.0
    eta: float = 1.1
    conventions: str = "empo"
    terminal_v_r: float | None = None

    def __post_init__(self) -> None:
        if self.conventions not in CONVENTIONS:
            raise ValueError(f"conventions: {self.conventions!r}, expected one of {list(CONVENTIONS)}")
        if self.terminal_v_r is None:
            object.__setattr__(self, "terminal_v_r", -1e-10 if self.conventions == "empo" else -1.0)
        checks = {
            "beta_r": (lambda v: v >= 0.0, ">= 0"),
            "gamma_h": (lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
            "gamma_r": (lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
            "zeta": (lambda v: v >= 1.0, ">= 1 (risk averse or neutral)"),
            "xi": (lambda v: v > 0.0, "> 0"),
            "eta": (lambda v: v > 0.0, "> 0"),
            "terminal_v_r": (lambda v: v < 0.0, "< 0"),
        }
        for name, (ok, expected) in checks.items():
            value = getattr(self, name)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not is_number or not ok(value):
                raise ValueError(f"{name}: {value!r}, expected a finite number {expected}")

    def __setstate__(self, state: dict) -> None:
        # Configs pickled before the option existed (saved models) used the plain conventions.
        self.__dict__.update({"conventions": "plain", **state})

    @property
    def terminal_value(self) -> float:
        """``terminal_v_r`` resolved (never None after construction)."""
        assert self.terminal_v_r is not None
        return self.terminal_v_r

    @property
    def reward_weight(self) -> float:
        """The weight of U_r(s) in V_r(s): dw = (1 - gamma_r) / (-ln gamma_r) under EMPO's conventions, else 1."""
        if self.conventions == "plain" or self.gamma_r == 1.0:
            return 1.0
        return (1.0 - self.gamma_r) / -math.log(self.gamma_r)
