"""Hand a trained policy over to a model of another algorithm: recorded transitions and distillation.

Between curriculum stages of different algorithms (PPO -> TD3, PPO -> TwinDQN, ...) weights cannot
be copied. What carries over instead:

1. **experience**: the finished stage runs its final policy and records the transitions as an
   offline dataset (:mod:`sb3_ext.data` chunks + manifest, :func:`record_handoff`), optionally
   with a share ``recording_epsilon`` of the actions drawn at random (:func:`perturbed_actions`); an off-policy
   successor's replay buffer is seeded from it (:func:`~sb3_ext.data.load_chunks`, as
   :class:`~sb3_ext.callbacks.OfflineSeed` does);
2. **behaviour**: the successor's actor is fitted to the predecessor's actions on the recorded
   states for a few epochs (behaviour cloning, :func:`distil`):

   - Box actions, actor-critic off-policy (TD3, DDPG, SAC, DelayedTD3, TQC, ...): mean squared
     error between the actor's deterministic action and the teacher's, both scaled to [-1, 1]
     (the actor target is then synced to the actor);
   - Discrete actions, Q-learning (DQN, TwinDQN, QR-DQN, QuantileDQN): the large-margin loss of
     DQfD (Hester et al., 2018), ``max_a [Q(s, a) + margin * (a != a_teacher)] - Q(s, a_teacher)``,
     which makes the teacher's action greedy by a margin without dictating the Q-values' scale
     (the target network is then synced);
   - stochastic policies (PPO, A2C, ...): negative log-likelihood of the teacher's action.

3. **values**: an off-policy successor's critic (a Q-learner's Q-network) is then fitted to the
   returns of the recorded transitions, the actor held still (:mod:`sb3_ext.curriculum.critic_warmup`),
   so that its first updates follow the values of the handed-over behaviour, not a random critic;
4. **the ranking** (optional, ``training_margin_weight`` > 0): a TwinDQN or QuantileDQN successor
   keeps the large-margin term on the recorded states and the teacher's actions in every gradient
   step of its own training (:class:`~sb3_ext.common.demonstrations.DemonstrationMargin`), as
   DQfD does. Without it, TD updates on data from a good policy, whose actions have nearly equal
   values, reshuffle the greedy action within a few thousand steps; with it the student keeps
   the teacher's level but hardly rises above it, a poor teacher's included (both measured on
   CartPole, docs/trainer.md), hence off by default. Other Q-learners (SB3's DQN, QRDQN) have no
   such term in their ``train()``; for them the margin ends with the warm-up (logged);
5. **the actions** (optional, ``training_bc_weight`` > 0): a DelayedTD3 successor's actor loss
   becomes TD3+BC's (Fujimoto and Gu, 2021), cloning the teacher's actions on the recorded states
   (:class:`~sb3_ext.common.demonstrations.DemonstrationCloning`), its weight kept or fading over
   ``training_bc_fade_updates`` actor updates. Without it TD3's actor climbs its critic's action
   gradient away from the recorded actions in its first few hundred steps (measured on Pendulum,
   docs/trainer.md). Other actor-critics (SB3's TD3, DDPG, SAC) have no such term (logged).

How much of each is set by the next stage's ``handoff:`` section
(:class:`~sb3_ext.curriculum.config.HandoffConfig`).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_ext.common.fitting import fit_on_rows
from sb3_ext.curriculum.config import HandoffConfig
from sb3_ext.common.demonstrations import DemonstrationCloning, DemonstrationMargin, large_margin_loss, q_values
from sb3_ext.common.targets import TwinCriticTraining
from sb3_ext.curriculum.critic_warmup import WarmupReport, sync_targets, warm_up_critic
from sb3_ext.data.reader import iter_chunks, load_chunks
from sb3_ext.data.writer import ChunkWriter
from sb3_ext.delayed_td3 import DelayedTD3

log = logging.getLogger(__name__)


@dataclass
class HandoffReport:
    """What a hand-over did: transitions seeded into the replay buffer, distillation losses per
    epoch, how often the student then acts as the teacher (the same discrete action, or a scaled
    continuous action within 0.1) on the recorded states, and the critic warm-up (if any), after
    which that agreement is measured again; the weight of the large-margin term (Q-learners) or of
    the cloning term (DelayedTD3) the student keeps during its own training (None: none kept)."""

    transitions_seeded: int
    distillation_losses: list[float] = field(default_factory=list)
    agreement: float | None = None
    critic_warmup: WarmupReport | None = None
    agreement_after_warmup: float | None = None
    training_margin_weight: float | None = None
    training_bc_weight: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for run states and summaries."""
        return {"transitions_seeded": self.transitions_seeded, "distillation_losses": self.distillation_losses,
                "agreement": self.agreement,
                "critic_warmup": self.critic_warmup.to_dict() if self.critic_warmup is not None else None,
                "agreement_after_warmup": self.agreement_after_warmup,
                "training_margin_weight": self.training_margin_weight, "training_bc_weight": self.training_bc_weight}


def record_handoff(model: BaseAlgorithm, env: VecEnv, directory: str | os.PathLike, n_transitions: int,
                   env_id: str | None = None, epsilon: float = 0.0, seed: int | None = None) -> dict[str, Any]:
    """Run ``model``'s stochastic policy in ``env`` and record ``n_transitions`` as a dataset; returns its manifest.

    Stochastic, so that the successor's buffer sees the spread of actions the policy still has,
    not one deterministic path. With ``epsilon`` > 0 each env's action is, with that probability
    at every step, replaced by one drawn uniformly from the action space (``seed`` seeds those
    draws; :func:`perturbed_actions`), so that the recording also holds actions the policy would
    not take and their outcomes. An existing dataset in ``directory`` is replaced (a resumed stage
    records again when it finishes).
    """
    n_transitions -= n_transitions % env.num_envs
    # Chunks must hold a multiple of n_envs rows (a per-column lattice has hundreds of agent slots).
    chunk_size = env.num_envs * max(1, min(n_transitions, 50_000) // env.num_envs)
    policy: Any = perturbed_actions(model, env.action_space, epsilon, seed) if epsilon else model
    with ChunkWriter(directory, env.observation_space, env.action_space, n_envs=env.num_envs, env_id=env_id,
                     chunk_size=chunk_size,
                     provenance={"handoff_from": type(model).__name__, "num_timesteps": model.num_timesteps,
                                 "epsilon": epsilon, "epsilon_seed": seed},
                     overwrite=True) as writer:
        writer.record(env, policy, max(n_transitions, env.num_envs), deterministic=False)
    return writer.close()  # idempotent: the manifest the context manager wrote


def perturbed_actions(model: BaseAlgorithm, action_space: spaces.Space, epsilon: float,
                      seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``observations -> actions``: ``model``'s sampled actions, each row replaced with probability
    ``epsilon`` by a uniform draw from ``action_space`` (a seeded copy, so that the env's own space
    keeps its random stream).

    Why a hand-over records such actions: a Q-learner learns to rank two actions only from data
    that hold both, with their outcomes, in similar states. A good teacher's own samples hardly
    ever hold a bad action and its failure, and TD learning on them alone lets the greedy action
    drift to either. On CartPole (PPO -> TwinDQN, 6 seeds) a share of 0.3 made the hand-over reach
    the target sooner than a cold start on every seed (0: on 5 of 6); only that task was measured,
    so the default stays 0 (docs/trainer.md, "A perturbed recording").
    """
    if not 0 <= epsilon <= 1:
        raise ValueError(f"handoff recording: epsilon={epsilon}; expected a probability in [0, 1]")
    rng = np.random.default_rng(seed)
    space = copy.deepcopy(action_space)
    # Seeded from rng, not with ``seed`` itself: a space seeded with the same integer gets the very
    # generator rng is, and its draws would repeat the which-row draws.
    space.seed(int(rng.integers(2**32)))

    def act(observations: np.ndarray) -> np.ndarray:
        actions = np.array(model.predict(observations, deterministic=False)[0])
        for row in np.flatnonzero(rng.random(len(actions)) < epsilon):
            actions[row] = space.sample()
        return actions

    return act


def recorded_observations(directory: str | os.PathLike) -> np.ndarray:
    """Every observation of a recorded dataset, in recording order."""
    return np.concatenate([chunk["observations"] for chunk in iter_chunks(directory)])


def deterministic_actions(teacher: BaseAlgorithm, observations: np.ndarray) -> np.ndarray:
    """``teacher.predict(..., deterministic=True)`` over many observations, in batches."""
    actions = [
        teacher.predict(batch, deterministic=True)[0]
        for batch in np.array_split(observations, max(1, len(observations) // 4096))
    ]
    return np.concatenate(actions)


def distil(
    student: BaseAlgorithm,
    teacher: BaseAlgorithm,
    observations: np.ndarray,
    epochs: int = 5,
    seed: int | None = None,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> HandoffReport:
    """Fit ``student``'s policy to ``teacher``'s deterministic actions on ``observations`` (see the module)."""
    if student.action_space != teacher.action_space:
        raise ValueError(f"handoff: action spaces differ ({teacher.action_space} -> {student.action_space})")
    report = HandoffReport(transitions_seeded=0)
    if epochs == 0 or len(observations) == 0:
        return report
    policy: Any = student.policy  # the algorithm family (below) decides which methods it has
    teacher_actions = deterministic_actions(teacher, observations)
    discrete = isinstance(student.action_space, spaces.Discrete)
    if isinstance(student, OffPolicyAlgorithm) and not discrete:
        targets = policy.scale_action(teacher_actions).astype(np.float32)
    else:
        targets = teacher_actions

    def tensor(array: np.ndarray) -> th.Tensor:
        obs = policy.obs_to_tensor(array)[0]
        assert isinstance(obs, th.Tensor), "handoff: Dict observations are not supported"
        return obs

    def loss_of(index: np.ndarray) -> th.Tensor:
        obs = tensor(observations[index])
        if isinstance(student, OnPolicyAlgorithm):
            _, log_prob, _ = policy.evaluate_actions(obs, th.as_tensor(targets[index], device=student.device))
            return -log_prob.mean()
        if discrete:
            return large_margin_loss(q_values(student, obs), th.as_tensor(targets[index], device=student.device))
        return F.mse_loss(policy(obs, deterministic=True), th.as_tensor(targets[index], device=student.device))

    policy.set_training_mode(True)
    report.distillation_losses = fit_on_rows(
        loss_of, policy.parameters(), len(observations), epochs, np.random.default_rng(seed), batch_size, learning_rate
    )
    policy.set_training_mode(False)
    sync_targets(student)
    report.agreement = agreement(student, teacher_actions, observations)
    return report


def agreement(student: BaseAlgorithm, teacher_actions: np.ndarray, observations: np.ndarray) -> float | None:
    """Share of ``observations`` where the student's deterministic action is the teacher's (discrete)
    or within 0.1 of it on the [-1, 1] scale (Box); None for other action spaces."""
    chosen = deterministic_actions(student, observations)
    if isinstance(student.action_space, spaces.Discrete):
        return float(np.mean(chosen.reshape(-1) == teacher_actions.reshape(-1)))
    if isinstance(student.action_space, spaces.Box):
        low, high = student.action_space.low, student.action_space.high
        gap = 2 * np.abs(chosen - teacher_actions) / (high - low)  # on the [-1, 1] scale
        return float(np.mean(gap.reshape(len(observations), -1).max(axis=1) < 0.1))
    return None


def hand_off(
    student: BaseAlgorithm,
    teacher: BaseAlgorithm,
    dataset: str | os.PathLike,
    settings: HandoffConfig | None = None,
    seed: int | None = None,
) -> HandoffReport:
    """Seed ``student``'s replay buffer from ``dataset`` (off-policy students), distil ``teacher``
    into it on the dataset's states, then warm up an off-policy student's critic on the recorded
    returns and, if so set, give a TwinDQN / QuantileDQN student the large-margin term or a
    DelayedTD3 student the cloning term for its own training (see the module; ``settings``
    default to :class:`HandoffConfig`'s). Logged through the ``sb3_ext`` logger."""
    settings = settings or HandoffConfig()
    seeded = 0
    if isinstance(student, OffPolicyAlgorithm) and student.replay_buffer is not None:
        seeded = load_chunks(student.replay_buffer, dataset)
    observations = recorded_observations(dataset)
    report = distil(student, teacher, observations, epochs=settings.distil_epochs, seed=seed)
    report.transitions_seeded = seeded
    log.info(
        "handoff %s -> %s: %d transitions seeded from %s; distillation loss per epoch %s; agreement %.3f",
        type(teacher).__name__,
        type(student).__name__,
        seeded,
        dataset,
        ", ".join(f"{loss:.4f}" for loss in report.distillation_losses),
        report.agreement if report.agreement is not None else float("nan"),
    )
    if not isinstance(student, OffPolicyAlgorithm) or len(observations) == 0:
        return report
    teacher_actions = deterministic_actions(teacher, observations)
    if settings.critic_warmup_steps > 0:
        report.critic_warmup = warm_up_critic(
            student,
            dataset,
            teacher_actions,
            steps=settings.critic_warmup_steps,
            rounds=settings.critic_warmup_rounds,
            learning_rate=settings.critic_warmup_learning_rate,
            margin_weight=settings.margin_weight,
            seed=seed,
        )
        report.agreement_after_warmup = agreement(student, teacher_actions, observations)
        warmup = report.critic_warmup
        log.info(
            "handoff critic warm-up: %d gradient steps; error against the recorded returns %.4g -> %.4g, "
            "one-step TD error on the seeded buffer %.4g -> %.4g; agreement after it %.3f",
            warmup.gradient_steps,
            warmup.return_error_before,
            warmup.return_error_after,
            warmup.td_error_before if warmup.td_error_before is not None else float("nan"),
            warmup.td_error_after if warmup.td_error_after is not None else float("nan"),
            report.agreement_after_warmup if report.agreement_after_warmup is not None else float("nan"),
        )
    keep_demonstrations(student, observations, teacher_actions, settings, report)
    return report


def keep_demonstrations(
    student: OffPolicyAlgorithm,
    observations: np.ndarray,
    teacher_actions: np.ndarray,
    settings: HandoffConfig,
    report: HandoffReport,
) -> None:
    """Give the student, if ``settings`` ask for it, the term that keeps it near the teacher on the
    recorded states during its own training: DQfD's large margin for a discrete TwinDQN /
    QuantileDQN (step 4 of the module), TD3+BC's cloning term for a Box-action DelayedTD3 (step 5);
    say so in ``report``, or log why not."""
    discrete = isinstance(student.action_space, spaces.Discrete)
    weight = settings.training_margin_weight if discrete else settings.training_bc_weight
    if weight == 0 or not (discrete or isinstance(student.action_space, spaces.Box)):
        return
    term, able, able_names = (("large-margin", TwinCriticTraining, "TwinDQN and QuantileDQN") if discrete
                              else ("behaviour-cloning", DelayedTD3, "DelayedTD3"))
    if not isinstance(student, able):
        log.warning("handoff: %s has no %s term in its own training (%s has); the teacher's %s kept only by "
                    "the hand-over itself", type(student).__name__, term, able_names,
                    "ranking is" if discrete else "actions are")
        return
    if discrete:
        student.demonstrations = DemonstrationMargin(observations, teacher_actions, weight=weight)
        report.training_margin_weight = weight
        how = ""
    else:
        student.demonstrations = DemonstrationCloning(observations, student.policy.scale_action(teacher_actions),
                                                      weight=weight, fade_updates=settings.training_bc_fade_updates)
        report.training_bc_weight = weight
        how = f", fading over {settings.training_bc_fade_updates} actor updates (0: kept)"
    log.info("handoff: %s keeps the %s term (weight %g%s) on %d recorded states while it trains",
             type(student).__name__, term, weight, how, len(observations))
