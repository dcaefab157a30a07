"""Demonstrations a student keeps close to while it trains: DQfD's large margin, TD3+BC's cloning term.

DQfD (Hester et al., 2018) adds to a Q-learner's TD loss, on demonstration transitions, the term
``max_a [Q(s, a) + margin * (a != a_E)] - Q(s, a_E)``: zero once the demonstrated action ``a_E`` is
greedy by ``margin``, else the shortfall. It keeps the term for the whole of training, not only in
pre-training, because TD updates alone do not preserve the ranking of actions whose values are
close: where the data cannot tell the actions apart by more than the regression's noise, the
greedy action is decided by that noise. The margin decides those ties for the demonstrator, while
a TD error that separates the actions by more than the margin still overrides it.

:class:`DemonstrationMargin` holds the demonstrated states and actions and computes the weighted
term on a minibatch of them; :class:`sb3_ext.common.targets.TwinCriticTraining` (TwinDQN,
QuantileDQN) adds it to every gradient step when a model has one. The hand-over between curriculum
stages installs one (:mod:`sb3_ext.curriculum.handoff`).

The actor-critic counterpart (:class:`DemonstrationCloning`) is TD3+BC's actor loss (Fujimoto and
Gu, 2021), ``-Q(s, mu(s)) / mean|Q| + weight * (mu(s) - a_E)^2``: the critic term normalised by
its own scale, so that one weight fits any reward scale, plus behaviour cloning on demonstration
transitions. TD3's actor otherwise climbs its critic's action gradient to actions the critic has
never seen and overvalues; the cloning term holds it near the demonstrated actions while the
critic learns, and it may fade (``fade_updates``) so that the student can leave them.
:class:`sb3_ext.delayed_td3.DelayedTD3` adds it to every actor update when a model has one. No
library offers either term for SB3's algorithms, hence these few lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from torch.nn import functional as F

#: Margin of the DQfD large-margin loss (their value).
DQFD_MARGIN = 0.8
#: Weight of TD3+BC's cloning term against the normalised critic term: their alpha = 2.5 is 1 / 0.4.
TD3_BC_WEIGHT = 0.4


def q_network(model: BaseAlgorithm, target: bool = False) -> th.nn.Module | None:
    """A value-based model's Q-network (``q_net`` or ``quantile_net``, or their target copies)."""
    policy: Any = model.policy
    suffix = "_target" if target else ""
    return getattr(policy, f"q_net{suffix}", None) or getattr(policy, f"quantile_net{suffix}", None)


def q_values(model: BaseAlgorithm, obs: th.Tensor) -> th.Tensor:
    """Q-values (batch, n_actions) of a value-based model; quantile nets are averaged over quantiles."""
    network = q_network(model)
    if network is None:
        raise ValueError(f"{type(model).__name__} has neither a q_net nor a quantile_net")
    values: th.Tensor = network(obs)
    return values.mean(dim=1) if values.dim() == 3 else values


def check_rows(observations: np.ndarray, actions: np.ndarray) -> None:
    """Refuse demonstrations whose observations and actions do not pair up, in one line."""
    if len(observations) != len(actions) or len(actions) == 0:
        raise ValueError(
            f"demonstrations: {len(observations)} observations and {len(actions)} actions; "
            "expected the same non-zero number"
        )


def sample_rows(observations: np.ndarray, actions: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` demonstrations drawn with NumPy's global generator (the one SB3 seeds and its
    replay buffers draw from)."""
    index = np.random.randint(0, len(actions), size=batch_size)
    return observations[index], actions[index]


def large_margin_loss(values: th.Tensor, actions: th.Tensor, margin: float = DQFD_MARGIN) -> th.Tensor:
    """DQfD's ``max_a [Q(s, a) + margin * (a != a_E)] - Q(s, a_E)``, batch mean: zero once ``a_E`` is greedy by the margin."""
    actions = actions.long().reshape(-1)
    margins = margin * (1 - F.one_hot(actions, values.shape[1]).float())
    chosen = values.gather(1, actions[:, None]).squeeze(1)
    return ((values + margins).max(dim=1).values - chosen).mean()


@dataclass
class DemonstrationMargin:
    """Demonstrated states and actions, and the weight of DQfD's large-margin term on them.

    The weight stays the same for the whole of training, as in DQfD: a margin that fades lets the
    ties fall to the regression's noise again (measured on CartPole: the greedy policy collapsed
    within 1000 steps of the weight reaching zero). Saved with the model (its arrays are pickled
    into the zip), so a resumed run keeps it.

    :param observations: demonstrated states, ``(n, *obs_shape)``
    :param actions: the demonstrator's discrete action in each state, ``(n,)``
    """

    observations: np.ndarray
    actions: np.ndarray
    weight: float = 1.0
    margin: float = DQFD_MARGIN

    def __post_init__(self) -> None:
        self.actions = np.asarray(self.actions).reshape(-1)
        check_rows(self.observations, self.actions)

    def loss(self, model: BaseAlgorithm, batch_size: int) -> th.Tensor:
        """The unweighted large-margin term on ``batch_size`` demonstrations (:func:`sample_rows`)."""
        observations, actions = sample_rows(self.observations, self.actions, batch_size)
        policy: Any = model.policy
        obs = policy.obs_to_tensor(observations)[0]
        return large_margin_loss(q_values(model, obs), th.as_tensor(actions, device=model.device), self.margin)


@dataclass
class DemonstrationCloning:
    """Demonstrated states and actions, and the weight of TD3+BC's cloning term in an actor's loss.

    The actor loss becomes ``-Q(s, mu(s)) / mean|Q| + weight(t) * mean((mu(s_E) - a_E)^2)``: the
    critic term on the replayed batch, divided by its detached mean absolute value (TD3+BC's
    normalisation), the cloning term on a minibatch of demonstrations. ``weight(t)`` is ``weight``
    for ``fade_updates`` = 0, else it falls linearly to 0 over the first ``fade_updates`` actor
    updates (``updates`` counts them); the normalisation stays, so that the actor's Adam sees
    gradients of one scale throughout. Saved with the model (pickled into the zip).

    :param observations: demonstrated states, ``(n, *obs_shape)``
    :param actions: the demonstrator's actions scaled to the actor's [-1, 1] range, ``(n, action_dim)``
    """

    observations: np.ndarray
    actions: np.ndarray
    weight: float = TD3_BC_WEIGHT
    fade_updates: int = 0
    updates: int = 0

    def __post_init__(self) -> None:
        self.actions = np.asarray(self.actions, dtype=np.float32).reshape(len(self.actions), -1)
        check_rows(self.observations, self.actions)
        if self.fade_updates < 0:
            raise ValueError(f"demonstrations: fade_updates={self.fade_updates}; expected 0 (no fading) or more")

    def current_weight(self) -> float:
        """The cloning term's weight at the next actor update."""
        if self.fade_updates == 0:
            return self.weight
        return self.weight * max(0.0, 1.0 - self.updates / self.fade_updates)

    def loss(self, model: BaseAlgorithm, batch_size: int) -> th.Tensor:
        """The unweighted cloning term, mean squared error of ``model.actor`` on ``batch_size``
        demonstrations (:func:`sample_rows`)."""
        observations, actions = sample_rows(self.observations, self.actions, batch_size)
        policy: Any = model.policy
        obs = policy.obs_to_tensor(observations)[0]
        return F.mse_loss(policy.actor(obs), th.as_tensor(actions, device=model.device))
