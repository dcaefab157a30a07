"""RLHFRewardRelabel: add aggregated human (or scripted) feedback to the rewards an algorithm learns from."""

from __future__ import annotations

import itertools
import warnings
from typing import Any, cast

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_ext.rlhf.aggregation import aggregate_ratings
from sb3_ext.rlhf.config import RLHFConfig
from sb3_ext.rlhf.log import TransitionLog
from sb3_ext.rlhf.reward_model import BradleyTerryRewardModel


class RLHFRewardRelabel(BaseCallback):
    """Relabel recent transitions with ``env reward + feedback_weight * aggregated feedback``.

    Every step, the callback logs the transition about to be stored (with its episode id, step and
    buffer position). At the end of every rollout, before the algorithm trains, it lets the
    feedback sources take in new feedback, aggregates it per transition and writes the relabelled
    rewards into the most recent ``window`` buffer positions:

    - off-policy (DQN, SAC, TD3, ...): into the replay buffer, at the positions the transitions
      were written to (so wrap-around and several envs need no special care);
    - on-policy (PPO, A2C, REINFORCE): into the rollout buffer, then the buffer's returns and
      advantages are recomputed. SB3's ``collect_rollouts`` has already computed them before
      ``on_rollout_end``; the recomputation uses the same last values and dones (still in the
      rollout loop's locals) and ``compute_returns_and_advantage`` is a pure function of the
      buffer's contents, so the result is what the rollout would have given with these rewards.

    A transition may be relabelled several times while it is in the window (e.g. a rating arrives
    late): the adjustment currently applied is remembered and replaced, never added twice.

    Logs ``rlhf/feedback_count`` (feedback items the sources hold), ``rlhf/mean_adjustment`` (mean
    reward change over the relabelled transitions) and ``rlhf/agreement`` (Pearson correlation of
    the feedback with the env reward over those transitions; not logged when either is constant).
    Raters see observations as the algorithm sees them (normalised under ``VecNormalize``).

    :param config: an :class:`~sb3_ext.rlhf.config.RLHFConfig`; or leave it out and pass its fields
        as keyword arguments (as an rl-zoo3 YAML ``callback:`` entry does)
    :param verbose: verbosity level
    """

    def __init__(self, config: RLHFConfig | None = None, verbose: int = 0, **config_kwargs: Any):
        super().__init__(verbose)
        if config is not None and config_kwargs:
            raise ValueError(f"RLHFRewardRelabel: pass either config or its fields, not both (got {sorted(config_kwargs)})")
        self.config = config if config is not None else RLHFConfig(**config_kwargs)
        self.log: TransitionLog | None = None
        self._log_owner: BaseAlgorithm | None = None
        self.reward_model: BradleyTerryRewardModel | None = None
        self._buffer: RolloutBuffer | ReplayBuffer | None = None
        self._rollout_start = 0
        self._fitted_on: tuple[int, ...] = ()
        self._warned_unused: set[int] = set()

    @property
    def _bradley_terry(self) -> bool:
        return self.config.aggregation == "bradley_terry"

    def _state(self) -> tuple[TransitionLog, RolloutBuffer | ReplayBuffer]:
        """The transition log and the model's buffer, which exist once training has started."""
        if self.log is None or self._buffer is None:
            raise RuntimeError("RLHFRewardRelabel: used before learn() initialised it")
        return self.log, self._buffer

    def _init_callback(self) -> None:
        model = self.model
        if isinstance(model, OnPolicyAlgorithm):
            self._buffer, limit = model.rollout_buffer, model.n_steps
        elif isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
            self._buffer, limit = model.replay_buffer, model.replay_buffer.buffer_size
        else:
            raise ValueError(f"RLHFRewardRelabel: expected an SB3 on- or off-policy algorithm, got {type(model).__name__}")
        if isinstance(model.observation_space, spaces.Dict):
            raise ValueError(f"RLHFRewardRelabel: Dict observation spaces are not supported, got {model.observation_space}")
        if self.log is not None and self._log_owner is model:
            # Another learn() call: keep the log (the sources' bookkeeping refers to its positions).
            # learn(reset_num_timesteps=True) zeroes the step count and resets the envs, which cuts
            # the running episodes: their envs start new ones.
            if model.num_timesteps == 0:
                self.log.begin_episodes(np.arange(model.n_envs))
            return
        self._log_owner = model
        self.window = min(self.config.window, limit)
        self.log = TransitionLog(self.window, model.n_envs, model.observation_space, model.action_space)
        if self._bradley_terry:
            self.reward_model = BradleyTerryRewardModel(
                model.observation_space, model.action_space, **self.config.reward_model_kwargs
            )

    def _on_rollout_start(self) -> None:
        self._rollout_start = self._state()[0].total

    def _on_step(self) -> bool:
        # Called between env.step and the buffer write, in both SB3 rollout loops.
        step = self.locals
        dones = step["dones"]
        next_observations = np.array(step["new_obs"], copy=True)
        for env in np.flatnonzero(dones):
            terminal = step["infos"][env].get("terminal_observation")
            if terminal is not None:
                next_observations[env] = terminal
        # On-policy loops name the env-space action clipped_actions; off-policy ones, actions.
        actions = step["clipped_actions"] if "clipped_actions" in step else step["actions"]
        log, buffer = self._state()
        # Dict observation spaces are refused in _init_callback: the last observations are an array.
        # _last_obs (the observation acted on) is private, but SB3 offers no public hook for it: the
        # off-policy loop's locals hold no copy.
        log.add(cast(np.ndarray, self.model._last_obs), actions, next_observations, step["rewards"], dones, buffer.pos)
        return True

    def _on_rollout_end(self) -> None:
        log, buffer = self._state()
        for source in self.config.feedback_sources:
            source.update(log)
        self._warn_about_unused_feedback()

        # On-policy, only this rollout's transitions are still in the buffer.
        first = self._rollout_start if isinstance(buffer, RolloutBuffer) else log.oldest
        slots = log.slots(max(first, log.oldest), log.total)
        if len(slots) == 0:
            return
        feedback, enough = self._feedback(log, slots)
        adjustment = np.where(enough, self.config.feedback_weight * feedback, 0.0).astype(np.float32)
        positions = log.buffer_positions[slots]
        buffer.rewards[positions] += adjustment - log.applied[slots]
        log.applied[slots] = adjustment
        if isinstance(buffer, RolloutBuffer):
            buffer.compute_returns_and_advantage(last_values=self.locals["values"], dones=self.locals["dones"])
        self._record(feedback[enough], adjustment[enough], log.rewards[slots][enough])
        self._after_relabel(slots, feedback, enough)

    def _after_relabel(self, slots: np.ndarray, feedback: np.ndarray, enough: np.ndarray) -> None:
        """Hook for subclasses, called after each relabelling with the log slots relabelled, the
        feedback per (slot, env) and where it rested on enough items (the rest kept their reward)."""

    def _feedback(self, log: TransitionLog, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(feedback value, whether it rests on at least min_feedback items), per slot and env."""
        shape = (len(slots), log.n_envs)
        if self.reward_model is not None:  # aggregation="bradley_terry"
            preferences = self._feedback_items()
            if not preferences or len(preferences) < self.config.min_feedback:
                return np.zeros(shape), np.zeros(shape, dtype=bool)
            if tuple(map(id, preferences)) != self._fitted_on:
                self.reward_model.fit(preferences)
                self._fitted_on = tuple(map(id, preferences))
            observations = log.observations[slots].reshape(-1, *log.observations.shape[2:])
            actions = log.actions[slots].reshape(-1, *log.actions.shape[2:])
            return self.reward_model.predict(observations, actions).reshape(shape), np.ones(shape, dtype=bool)
        values, counts = aggregate_ratings(
            self._feedback_items(), log.episodes[slots].ravel(), log.steps[slots].ravel(), self.config.aggregation
        )
        return values.reshape(shape), (counts >= max(self.config.min_feedback, 1)).reshape(shape)

    def _feedback_items(self) -> list:
        """All ratings, or all preferences with 'bradley_terry', that the sources hold."""
        kind = "preferences" if self._bradley_terry else "ratings"
        return list(itertools.chain.from_iterable(getattr(source, kind) for source in self.config.feedback_sources))

    def _warn_about_unused_feedback(self) -> None:
        unused = "ratings" if self._bradley_terry else "preferences"
        for index, source in enumerate(self.config.feedback_sources):
            if getattr(source, unused) and index not in self._warned_unused:
                self._warned_unused.add(index)
                warnings.warn(
                    f"sources[{index}] ({type(source).__name__}) gave {unused}, which aggregation="
                    f"{self.config.aggregation!r} does not use; they are ignored",
                    stacklevel=2,
                )

    def _record(self, feedback: np.ndarray, adjustment: np.ndarray, env_rewards: np.ndarray) -> None:
        self.logger.record("rlhf/feedback_count", len(self._feedback_items()))
        self.logger.record("rlhf/mean_adjustment", float(adjustment.mean()) if len(adjustment) else 0.0)
        if len(feedback) > 1 and feedback.std() > 0 and env_rewards.std() > 0:
            self.logger.record("rlhf/agreement", float(np.corrcoef(feedback, env_rewards)[0, 1]))
