"""Critic warm-up of a hand-over: the successor's critic learns what the handed-over behaviour is worth
before it steers anything.

Why it is needed: a freshly built off-policy model has a random critic. Right after its actor has
been distilled from the previous stage's policy, TD3's/SAC's first actor updates follow that random
critic's action gradient and undo the distillation; a distilled Q-network ranks the teacher's
action first, but its numbers are not the values of anything, so the first TD updates reshuffle
the ranking. Both were measured (docs/trainer.md): the student acts like the teacher at step 0
and is back at a cold start's level after the first thousand steps.

The warm-up is policy evaluation on the recorded transitions (the ones seeded into the replay
buffer): every critic head at the recorded action (for a Q-learner every head or quantile of its
Q-network) is regressed on the discounted return of the recorded episode, summed to the end of the
recording, with the student's own target critic at its own deterministic action standing in for
the rest where the recording cut an episode (time limit, end of recording). Each round recomputes
that bootstrap after syncing the targets; it is discounted by gamma to the power of the steps to
the cut, so a few rounds settle it. Only critic parameters are optimised: the actor does not move.
A Q-learner's Q-network is also its policy, so its loss adds the large-margin term of DQfD
(Hester et al., 2018) on the teacher's actions (the pre-training loss of DQfD with the return in
place of its n-step TD term), which keeps the distilled greedy action greedy.

No library offers this for SB3 models (SB3's ``train()`` always moves the actor and bootstraps from
one step), hence the few lines of regression here; the return targets are
:func:`sb3_ext.aux_heads.offline.return_targets`'.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from torch.nn import functional as F

from sb3_ext.aux_heads.offline import OfflineTransitions
from sb3_ext.common.demonstrations import large_margin_loss, q_network, q_values
from sb3_ext.common.fitting import fit_on_rows

#: Transitions of the seeded replay buffer on which the TD error is measured before and after.
TD_PROBE_SIZE = 2048
#: Rows per forward pass when evaluating targets and errors over the whole recording.
EVAL_BATCH = 4096


@dataclass
class WarmupReport:
    """What a critic warm-up did: mean loss per round, and the critic's errors before and after.

    ``return_error_*``: mean squared error of the critic heads against the return targets of the
    recorded transitions; ``td_error_*``: mean squared one-step TD error (the student's own target
    networks, its deterministic action) on a fixed sample of the seeded replay buffer.
    """

    rounds: int
    gradient_steps: int = 0
    losses: list[float] = field(default_factory=list)
    return_error_before: float | None = None
    return_error_after: float | None = None
    td_error_before: float | None = None
    td_error_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``handoff.json``."""
        return dict(vars(self))


def sync_targets(student: BaseAlgorithm) -> None:
    """Copy the online networks into their target copies, so that TD targets start from them."""
    policy: Any = student.policy
    pairs = (("actor", "actor_target"), ("critic", "critic_target"), ("q_net", "q_net_target"),
             ("quantile_net", "quantile_net_target"))
    for online, target in pairs:
        if getattr(policy, target, None) is not None and getattr(policy, online, None) is not None:
            getattr(policy, target).load_state_dict(getattr(policy, online).state_dict())


class _CriticView:
    """The critic heads of an off-policy student, whatever its family: values at given actions
    (batch, heads), state values from the target networks, and the parameters the warm-up may move."""

    def __init__(self, student: OffPolicyAlgorithm) -> None:
        self.student, self.policy = student, student.policy
        network, target = q_network(student), q_network(student, target=True)
        self.value_based = network is not None and target is not None
        if network is not None and target is not None:
            self.network, self.target = network, target
            # Twin heads are reduced with min for the bootstrap (as TwinDQN does); quantiles with mean.
            self.twin = hasattr(self.network, "forward_critics")
            self.parameters = list(self.network.parameters())
        else:
            policy: Any = self.policy
            self.network, self.target = policy.critic, getattr(policy, "critic_target", None) or policy.critic
            actor_parameters = {id(p) for p in policy.actor.parameters()}
            # A shared features extractor belongs to the actor: it must not move.
            self.parameters = [p for p in self.network.parameters() if id(p) not in actor_parameters]

    def _q_heads(self, network: Any, obs: th.Tensor) -> th.Tensor:
        """(batch, heads, n_actions) of a Q-network."""
        out = network.forward_critics(obs) if self.twin else network(obs)
        return out.unsqueeze(1) if out.dim() == 2 else out

    def heads(self, obs: th.Tensor, actions: th.Tensor, target: bool = False) -> th.Tensor:
        """Every head's value of ``actions`` (Q-learners: indices; others: actions on SB3's [-1, 1] scale)."""
        network = self.target if target else self.network
        if self.value_based:
            out = self._q_heads(network, obs)
            index = actions.long().reshape(-1, 1, 1).expand(-1, out.shape[1], 1)
            return out.gather(2, index).squeeze(2)
        values = network(obs, actions)
        if isinstance(values, tuple):
            return th.cat(values, dim=1)
        return values.mean(dim=2) if values.dim() == 3 else values.reshape(len(obs), -1)  # TQC: quantiles

    @th.no_grad()
    def state_values(self, obs: th.Tensor) -> th.Tensor:
        """Value of the student's own deterministic action under the target critic, heads reduced with min."""
        if self.value_based:
            greedy = q_values(self.student, obs).argmax(dim=1)
            values = self.heads(obs, greedy, target=True)
            return values.min(dim=1).values if self.twin else values.mean(dim=1)
        policy: Any = self.policy
        return self.heads(obs, policy(obs, deterministic=True), target=True).min(dim=1).values


def _in_batches(function: Callable[[np.ndarray], th.Tensor], n_rows: int) -> th.Tensor:
    return th.cat([function(index) for index in np.array_split(np.arange(n_rows), max(1, n_rows // EVAL_BATCH))])


def warm_up_critic(
    student: OffPolicyAlgorithm,
    dataset: str | os.PathLike,
    teacher_actions: np.ndarray | None,
    steps: int = 3000,
    rounds: int = 5,
    learning_rate: float = 1e-3,
    margin_weight: float = 1.0,
    seed: int | None = None,
) -> WarmupReport:
    """Fit ``student``'s critic to the returns of the transitions recorded in ``dataset`` (see the module).

    :param teacher_actions: the teacher's deterministic action on each recorded observation, for the
        large-margin term of a Q-learner (unused otherwise; None leaves that term out)
    :param steps: gradient steps in all, at least (minibatches of the student's ``batch_size``; whole
        passes over the recording, at least one per round); 0: nothing is done
    :param rounds: bootstrap recomputations (target networks synced after each)
    :param learning_rate: of the warm-up's own Adam (the returns' scale is far from a fresh critic's)
    """
    report = WarmupReport(rounds=rounds)
    if steps == 0:
        return report
    policy: Any = student.policy
    view = _CriticView(student)
    data = OfflineTransitions(dataset, student.observation_space, student.action_space, student.gamma)
    if view.value_based:
        actions = th.as_tensor(data.actions.reshape(len(data), -1)[:, 0], device=student.device).long()
    else:
        assert isinstance(student.action_space, spaces.Box)
        clipped = np.clip(data.actions, student.action_space.low, student.action_space.high)
        actions = th.as_tensor(policy.scale_action(clipped), device=student.device).float()
    obs = th.as_tensor(data.observations, device=student.device).float()
    next_obs = th.as_tensor(data.next_observations, device=student.device).float()
    partial = th.as_tensor(data.targets.partial, device=student.device).float()
    discount = th.as_tensor(data.targets.discount, device=student.device).float()
    bootstrap = th.as_tensor(data.targets.bootstrap, device=student.device).long()
    margin_actions = (
        th.as_tensor(teacher_actions[: len(data)], device=student.device).long().reshape(-1)
        if view.value_based and teacher_actions is not None and margin_weight > 0
        else None
    )

    def return_targets() -> th.Tensor:
        values = _in_batches(lambda index: view.state_values(next_obs[bootstrap[index]]), len(data))
        return partial + discount * values

    @th.no_grad()
    def return_error(targets: th.Tensor) -> float:
        errors = _in_batches(lambda index: (view.heads(obs[index], actions[index]) - targets[index, None]) ** 2, len(data))
        return float(errors.mean())

    probe = student.replay_buffer.sample(TD_PROBE_SIZE) if student.replay_buffer is not None else None

    @th.no_grad()
    def td_error() -> float | None:
        if probe is None:
            return None
        terminal = probe.dones.reshape(-1)  # SB3 zeroes the done of a time-limit truncation
        target = probe.rewards.reshape(-1) + student.gamma * (1 - terminal) * view.state_values(probe.next_observations)
        return float(((view.heads(probe.observations, probe.actions) - target[:, None]) ** 2).mean())

    report.td_error_before = td_error()
    targets = return_targets()
    report.return_error_before = return_error(targets)
    # Each family's own regression loss: Huber for Q-learners (which bounds its gradient, so the
    # large-margin term keeps its weight while the values are still far off), squared error otherwise.
    regression = F.smooth_l1_loss if view.value_based else F.mse_loss
    rng = np.random.default_rng(seed)
    batch_size = student.batch_size
    batches = max(1, len(data) // batch_size)  # per pass over the recording (fit_on_rows' split)
    epochs = max(1, math.ceil(steps / rounds / batches))
    for _ in range(rounds):

        def loss_of(index: np.ndarray, targets: th.Tensor = targets) -> th.Tensor:  # this round's targets
            heads = view.heads(obs[index], actions[index])
            loss = regression(heads, targets[index, None].expand_as(heads))
            if margin_actions is not None:
                loss = loss + margin_weight * large_margin_loss(q_values(student, obs[index]), margin_actions[index])
            return loss

        policy.set_training_mode(True)
        losses = fit_on_rows(loss_of, view.parameters, len(data), epochs, rng, batch_size, learning_rate)
        policy.set_training_mode(False)
        report.losses.append(losses[-1])
        report.gradient_steps += epochs * batches
        sync_targets(student)
        targets = return_targets()
    report.return_error_after = return_error(targets)
    report.td_error_after = td_error()
    return report
