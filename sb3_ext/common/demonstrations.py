"""Demonstrations a Q-learner keeps ranking first while it trains: the large-margin term of DQfD.

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
stages installs one (:mod:`sb3_ext.curriculum.handoff`). No library offers the term for SB3's
Q-learners, hence these few lines.
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
        if len(self.observations) != len(self.actions) or len(self.actions) == 0:
            raise ValueError(
                f"demonstrations: {len(self.observations)} observations and {len(self.actions)} actions; "
                "expected the same non-zero number"
            )

    def loss(self, model: BaseAlgorithm, batch_size: int) -> th.Tensor:
        """The unweighted large-margin term on ``batch_size`` demonstrations drawn with NumPy's global
        generator (the one SB3 seeds and its replay buffers draw from)."""
        index = np.random.randint(0, len(self.actions), size=batch_size)
        policy: Any = model.policy
        obs = policy.obs_to_tensor(self.observations[index])[0]
        actions = th.as_tensor(self.actions[index], device=model.device)
        return large_margin_loss(q_values(model, obs), actions, self.margin)
