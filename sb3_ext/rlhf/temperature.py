"""RLHFEntropyTemperature: relabel rewards with feedback and steer SAC's entropy target by it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC

from sb3_ext.rlhf.config import RLHFConfig
from sb3_ext.rlhf.relabel import RLHFRewardRelabel


class RLHFEntropyTemperature(RLHFRewardRelabel):
    """:class:`RLHFRewardRelabel` that also sets SAC's ``target_entropy`` from the feedback.

    The rule, applied after every relabelling: over the transitions the feedback covers, measure
    how far the feedback ranks actions as the policy's own critic does,

    ``agreement = Pearson correlation(feedback(s, a), Q(s, a) - Q(s, mu(s)))``   (in [-1, 1]),

    with ``Q = min_i Q_i`` and ``mu(s)`` the actor's deterministic action. The critic's advantage
    over the policy's own action, not ``Q(s, a)`` itself: across states ``Q`` mostly measures how
    good the state is, so a rating that only says "this is a good place to be" (on Pendulum a
    gentle torque is what an upright pole needs) would read as agreement about actions.

    smooth it, ``A <- smoothing * A + (1 - smoothing) * agreement`` (A starts at 0), and set

    ``target_entropy = base_target_entropy - entropy_span * A``.

    Feedback that contradicts what the critic values (A < 0) raises the entropy target, so SAC's
    automatic temperature grows and the policy explores more: the critic's picture of what is good
    is in doubt. Feedback that confirms it (A > 0) lowers the target and the policy settles.
    With no usable comparison (fewer than ``min_pairs`` covered transitions, or constant feedback
    or values) the target stays where it was. ``base_target_entropy`` is the model's target when
    training starts (SAC's ``-dim(action)`` by default).

    Works with SAC (or a subclass) learning its entropy coefficient (``ent_coef="auto"``) on Box
    actions: the agreement reads SAC's twin Q critics (TQC's critics give quantiles instead). Logs
    ``rlhf/critic_agreement`` (this relabelling's correlation), ``rlhf/smoothed_agreement`` (A)
    and ``train/target_entropy``, beside the relabelling's own ``rlhf/*`` metrics.

    :param config: the :class:`~sb3_ext.rlhf.config.RLHFConfig` of the relabelling (or its fields
        as keyword arguments)
    :param entropy_span: how far A = +-1 moves the target from its base (default: the action
        dimension, so the target ranges over ``[-2 dim, 0]`` around SAC's default ``-dim``)
    :param smoothing: weight of the previous A in the moving average (0: use each agreement as is)
    :param min_pairs: fewest feedback-covered transitions an agreement is measured on
    """

    def __init__(self, config: RLHFConfig | None = None, entropy_span: float | None = None, smoothing: float = 0.9,
                 min_pairs: int = 10, verbose: int = 0, **config_kwargs: Any) -> None:
        super().__init__(config, verbose, **config_kwargs)
        if entropy_span is not None and (not isinstance(entropy_span, (int, float)) or entropy_span < 0):
            raise ValueError(f"entropy_span={entropy_span!r}: expected a non-negative number or None")
        if not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
            raise ValueError(f"smoothing={smoothing!r}: expected a number in [0, 1)")
        if not isinstance(min_pairs, int) or min_pairs < 2:
            raise ValueError(f"min_pairs={min_pairs!r}: expected an integer >= 2")
        self.entropy_span = entropy_span
        self.smoothing = smoothing
        self.min_pairs = min_pairs
        self.smoothed_agreement = 0.0
        self.base_target_entropy: float | None = None

    def _init_callback(self) -> None:
        super()._init_callback()
        model = self.model
        if not isinstance(model, SAC) or model.log_ent_coef is None:
            raise ValueError(f"RLHFEntropyTemperature: {type(model).__name__} is not a SAC learning its entropy coefficient "
                             "(use SAC with ent_coef='auto')")
        if not isinstance(model.action_space, spaces.Box):
            raise ValueError(f"RLHFEntropyTemperature: expected Box actions, got {model.action_space}")
        if self.base_target_entropy is None:  # a second learn() keeps the first base
            self.base_target_entropy = float(model.target_entropy)
            if self.entropy_span is None:
                self.entropy_span = float(np.prod(model.action_space.shape))

    def critic_values(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``min_i Q_i(s, a)`` of the model's critic for env-space ``actions`` (as the log holds them)."""
        policy: Any = self.model.policy  # SAC's policy: scale_action and a critic
        space = self.model.action_space
        assert isinstance(space, spaces.Box)
        scaled = policy.scale_action(np.clip(actions, space.low, space.high))
        with th.no_grad():
            obs_tensor, _ = policy.obs_to_tensor(observations)
            q_values = policy.critic(obs_tensor, th.as_tensor(scaled, device=policy.device, dtype=th.float32))
        return th.min(th.cat(q_values, dim=1), dim=1).values.cpu().numpy()

    def policy_values(self, observations: np.ndarray) -> np.ndarray:
        """``Q(s, mu(s))``: the critic's value of the actor's own deterministic action."""
        policy: Any = self.model.policy
        with th.no_grad():
            obs_tensor, _ = policy.obs_to_tensor(observations)
            own = policy.actor(obs_tensor, deterministic=True)  # already in the critic's [-1, 1] space
            return th.min(th.cat(policy.critic(obs_tensor, own), dim=1), dim=1).values.cpu().numpy()

    def critic_advantages(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``Q(s, a) - Q(s, mu(s))``: how much better the critic rates ``a`` (env space) than the
        actor's own action."""
        return self.critic_values(observations, actions) - self.policy_values(observations)

    def _after_relabel(self, slots: np.ndarray, feedback: np.ndarray, enough: np.ndarray) -> None:
        if enough.sum() < self.min_pairs or self.log is None or self.base_target_entropy is None or self.entropy_span is None:
            return
        observations = self.log.observations[slots][enough]
        actions = self.log.actions[slots][enough].reshape(len(observations), -1)
        values = self.critic_advantages(observations, actions)
        covered = feedback[enough]
        if covered.std() == 0 or values.std() == 0:
            return
        agreement = float(np.corrcoef(covered, values)[0, 1])
        self.smoothed_agreement = self.smoothing * self.smoothed_agreement + (1 - self.smoothing) * agreement
        target = float(self.base_target_entropy - self.entropy_span * self.smoothed_agreement)
        self.model.target_entropy = target  # type: ignore[attr-defined]  # checked in _init_callback
        self.logger.record("rlhf/critic_agreement", agreement)
        self.logger.record("rlhf/smoothed_agreement", self.smoothed_agreement)
        self.logger.record("train/target_entropy", target)
