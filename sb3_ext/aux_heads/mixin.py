"""AuxiliaryHeadsMixin: the auxiliary phase that AuxPPO and AuxA2C add after their own update."""

from __future__ import annotations

import copy
import os
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.distributions import kl_divergence
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from torch.nn import functional as F

from sb3_ext.aux_heads.offline import OfflineTransitions
from sb3_ext.aux_heads.policies import AuxiliaryActorCriticPolicy
from sb3_ext.common.fitting import fit_on_rows
from sb3_ext.common.observations import refuse_dict_observations

SelfAuxiliaryHeads = TypeVar("SelfAuxiliaryHeads", bound="AuxiliaryHeadsMixin")

#: Live rollout transitions for the dynamics head: observation, action, next observation, reward.
LiveTransitions = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def value_alignment(predictions: np.ndarray, targets: np.ndarray) -> float:
    """``1 - mean|V - G| / mean|G|``: 1 when the values equal the return targets, 0 when they are as far
    off as predicting zero everywhere.

    Not explained variance: offline returns of long episodes are nearly constant, and explained
    variance ignores a constant offset, which is exactly the error a fresh value head makes.
    """
    scale = float(np.mean(np.abs(targets)))
    return 1.0 - float(np.mean(np.abs(predictions - targets))) / scale if scale > 0 else float("nan")


class AuxiliaryHeadsMixin(OnPolicyAlgorithm):
    """The auxiliary phase shared by :class:`AuxPPO` and :class:`AuxA2C`.

    The algorithm's own ``train()`` runs first, unchanged; then, like the auxiliary phase of
    Phasic Policy Gradient (Cobbe et al., 2021), ``aux_epochs`` passes over the rollout minimise,
    with an Adam optimizer of its own (at the algorithm's current learning rate),

    ``dynamics_coef * (dynamics loss on live and offline transitions)
    + prior_kl_coef * w(t) * KL(prior || policy) on the rollout's observations
    + offline_value_coef * w(t) * (V(s) - offline return)^2 on offline transitions
    + clone_coef * (1 - w(t)) * KL(policy before the phase || policy) on the rollout's observations``

    where ``w(t) = max(0, 1 - num_timesteps / prior_kl_steps)`` (0 without offline data or with
    ``prior_kl_coef=0``) fades the offline terms out as live data accumulates: the offline returns
    are the behaviour policy's, a fair value target only while the policy is held near that
    behaviour. The dynamics loss shapes the actor's layers only when there are offline
    transitions; on live data alone the head learns on the actor's features as they are, and the
    algorithm trains exactly as its base class would. The last term is PPG's behavioural-cloning
    term: it keeps the actions where the algorithm's own update left them while the other losses
    move the shared layers (the prior holds them instead while its pull is on). The prior itself is fitted once, on the
    offline data only, for ``prior_epochs`` epochs when training starts
    (``train/behaviour_prior_nll``); then the actor is warm-started from it by
    ``warm_start_epochs`` epochs of the same KL on the offline states (``train/warm_start_kl``).
    Offline return targets are Monte Carlo returns bootstrapped with the current value at
    truncations (see :func:`~sb3_ext.aux_heads.offline.return_targets`).

    Logged each update (and so written into ``metrics.json`` by :class:`~sb3_ext.callbacks.RunArtifacts`):
    ``train/dynamics_loss``, ``train/aux_policy_kl`` (mean KL between the policy before and after
    the phase on the rollout); with offline data also ``train/behaviour_prior_alignment`` =
    ``exp(-mean KL(prior || policy))`` on the rollout (1 when the policy matches the prior),
    ``train/meta_value_alignment`` = :func:`value_alignment` of the value head on the offline return
    targets (1 when it predicts them exactly), ``train/offline_value_loss`` and
    ``train/prior_kl_weight``.

    :param offline_data: dataset directory (:mod:`sb3_ext.data` format) to learn the heads from, or None
    :param dynamics_coef: weight of the dynamics head's loss
    :param prior_kl_coef: weight of the KL pull towards the behaviour prior at the start
    :param prior_kl_steps: live steps over which that weight fades to zero
    :param offline_value_coef: weight of the value loss on offline returns
    :param prior_epochs: epochs of maximum likelihood fitting of the prior on the offline data
    :param aux_batch_size: minibatch size of the auxiliary phase (default: PPO's ``batch_size``,
        the whole rollout for A2C)
    :param aux_epochs: passes of the auxiliary phase over the rollout per update
    :param warm_start_epochs: epochs of distilling the fitted prior into the actor on the offline
        states before the first rollout (0: the actor starts from scratch, only the KL term pulls)
    :param clone_coef: weight of the clone term holding the policy through the auxiliary phase
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": AuxiliaryActorCriticPolicy}

    def _set_auxiliary_options(
        self,
        env: GymEnv | str,
        *,
        offline_data: str | os.PathLike | None,
        dynamics_coef: float,
        prior_kl_coef: float,
        prior_kl_steps: int,
        offline_value_coef: float,
        prior_epochs: int,
        aux_batch_size: int | None,
        aux_epochs: int,
        warm_start_epochs: int,
        clone_coef: float,
    ) -> None:
        """Check and keep the auxiliary phase's arguments; the algorithm's ``__init__`` calls this
        before its base class's, so that bad input is refused before any model is built."""
        for name, value in (("dynamics_coef", dynamics_coef), ("prior_kl_coef", prior_kl_coef),
                            ("offline_value_coef", offline_value_coef), ("clone_coef", clone_coef)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}={value!r}: expected a non-negative number")
        for name, value in (("prior_kl_steps", prior_kl_steps), ("prior_epochs", prior_epochs), ("aux_epochs", aux_epochs),
                            ("warm_start_epochs", warm_start_epochs)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}: expected a non-negative integer")
        if aux_batch_size is not None and (not isinstance(aux_batch_size, int) or aux_batch_size < 1):
            raise ValueError(f"aux_batch_size={aux_batch_size!r}: expected a positive integer or None")
        refuse_dict_observations(type(self).__name__, env)
        self.offline_data = None if offline_data is None else str(offline_data)
        self.dynamics_coef = dynamics_coef
        self.prior_kl_coef = prior_kl_coef
        self.prior_kl_steps = prior_kl_steps
        self.offline_value_coef = offline_value_coef
        self.prior_epochs = prior_epochs
        self.aux_batch_size = aux_batch_size
        self.aux_epochs = aux_epochs
        self.warm_start_epochs = warm_start_epochs
        self.clone_coef = clone_coef
        self._offline: OfflineTransitions | None = None
        self.prior_fitted = False

    def learn(
        self: SelfAuxiliaryHeads,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfAuxiliaryHeads:
        """The base algorithm's ``learn()``; TensorBoard runs are named after the class (``AuxPPO_1``)
        unless ``tb_log_name`` is given."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name or type(self).__name__,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.policy, AuxiliaryActorCriticPolicy):
            raise ValueError(
                f"{type(self).__name__}: the policy must be an AuxiliaryActorCriticPolicy, got {type(self.policy).__name__}"
            )
        # Its own Adam, not the policy's optimizer: the offline value loss has large gradients (returns
        # of a good policy), and in a shared second-moment estimate they would shrink the algorithm's
        # own value steps. Its state is not saved; a loaded model starts it afresh.
        self.aux_optimizer = th.optim.Adam(self.aux_policy.parameters(), lr=self.lr_schedule(1))

    @property
    def aux_policy(self) -> AuxiliaryActorCriticPolicy:
        """The policy, as the AuxiliaryActorCriticPolicy that _setup_model checked it is."""
        assert isinstance(self.policy, AuxiliaryActorCriticPolicy)
        return self.policy

    def _excluded_save_params(self) -> list[str]:
        # The dataset is read again from offline_data when training resumes.
        return [*super()._excluded_save_params(), "_offline", "aux_optimizer"]

    @property
    def offline(self) -> OfflineTransitions | None:
        """The offline dataset, read on first use (so that a saved model loads without it)."""
        if self._offline is None and self.offline_data is not None:
            if self.get_vec_normalize_env() is not None:
                raise ValueError(f"{type(self).__name__}: offline_data cannot be combined with VecNormalize "
                                 "(the recorded observations are unnormalised)")
            self._offline = OfflineTransitions(self.offline_data, self.observation_space, self.action_space, self.gamma)
        return self._offline

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        result = super()._setup_learn(*args, **kwargs)
        # Before the first rollout, so that the first live data already comes from the warm-started actor.
        if self.offline is not None and not self.prior_fitted and self.prior_epochs:
            self.logger.record("train/behaviour_prior_nll", self.fit_prior())
            if self.warm_start_epochs:
                self.logger.record("train/warm_start_kl", self.warm_start_actor())
        return result

    def train(self) -> None:
        live = self._live_transitions()  # read before train(), which flattens the rollout buffer
        super().train()
        self._auxiliary_phase(live)

    def _live_transitions(self) -> LiveTransitions:
        """(obs, action, next obs, reward) of consecutive rollout steps within one episode."""
        buffer = self.rollout_buffer
        follows = buffer.episode_starts[1:] == 0  # step t+1 continues step t's episode, per env
        steps, envs = np.nonzero(follows)
        return (buffer.observations[steps, envs], buffer.actions[steps, envs], buffer.observations[steps + 1, envs],
                buffer.rewards[steps, envs])

    def fit_prior(self) -> float:
        """Fit the behaviour prior on the offline data (``prior_epochs`` epochs); returns the last epoch's NLL."""
        offline = self.offline
        assert offline is not None, "fit_prior needs offline_data"

        def nll(index: np.ndarray) -> th.Tensor:
            prior = self.aux_policy.prior_distribution(self._tensor(offline.observations[index]))
            return -prior.log_prob(self._tensor(offline.actions[index])).mean()

        losses = fit_on_rows(nll, self.aux_policy.prior_parameters(), len(offline), self.prior_epochs, self.rng)
        self.prior_fitted = True
        return losses[-1]

    def warm_start_actor(self) -> float:
        """Distil the fitted prior into the actor on the offline states (``warm_start_epochs`` epochs of
        ``KL(prior || policy)``); returns the last epoch's mean KL."""
        offline = self.offline
        assert offline is not None, "warm_start_actor needs offline_data"

        def kl(index: np.ndarray) -> th.Tensor:
            obs = self._tensor(offline.observations[index])
            with th.no_grad():
                prior = self.aux_policy.prior_distribution(obs)
            return kl_divergence(prior, self.aux_policy.get_distribution(obs)).mean()

        losses = fit_on_rows(kl, self.aux_policy.parameters(), len(offline), self.warm_start_epochs, self.rng)
        return losses[-1]

    @property
    def rng(self) -> np.random.Generator:
        """Draws the auxiliary phase's minibatches (seeded with the model's seed)."""
        if not hasattr(self, "_aux_rng"):
            self._aux_rng = np.random.default_rng(self.seed)
        return self._aux_rng

    def _tensor(self, array: np.ndarray) -> th.Tensor:
        return th.as_tensor(np.asarray(array), device=self.device)

    def _dynamics_loss(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, rewards: np.ndarray) -> th.Tensor:
        obs_t, next_t = self._tensor(obs), self._tensor(next_obs)
        # Only offline transitions make shaping the actor's features worth it (they cover states the
        # live policy has not visited); on live data alone the shaping slowed PPO on CartPole on every
        # seed measured (docs/trainer.md), so without offline data the head learns on the side.
        delta, reward = self.aux_policy.dynamics_prediction(obs_t, self._tensor(actions),
                                                            shape_features=self.offline is not None)
        target = self.aux_policy.flat_observation(next_t) - self.aux_policy.flat_observation(obs_t)
        return F.mse_loss(delta, target) + F.mse_loss(reward, self._tensor(rewards).float().reshape(-1))

    def _auxiliary_phase(self, live: LiveTransitions) -> None:
        self.aux_policy.set_training_mode(True)
        self._update_learning_rate(self.aux_optimizer)
        offline = self.offline
        buffer = self.rollout_buffer
        n_rows = buffer.buffer_size * buffer.n_envs
        batch = self.aux_batch_size or getattr(self, "batch_size", None) or n_rows
        scarcity = max(0.0, 1.0 - self.num_timesteps / self.prior_kl_steps) if self.prior_kl_steps else 0.0
        kl_weight, value_weight = self.prior_kl_coef * scarcity, self.offline_value_coef * scarcity
        # What holds the policy while the offline losses move the actor's layers: the prior while its
        # pull is on, then the policy as the update left it. Without offline data nothing moves them,
        # and the term stays out: its gradient there is round-off, which Adam would scale up to steps.
        pulled = scarcity if self.prior_kl_coef else 0.0
        clone_weight = self.clone_coef * (1.0 - pulled) if offline is not None else 0.0
        # After train() the rollout arrays are flattened: (n_steps * n_envs, ...) rows.
        observations = buffer.observations.reshape(n_rows, *buffer.obs_shape)
        dynamics_losses, kls, value_predictions, value_targets, value_losses = [], [], [], [], []
        starts = np.arange(0, n_rows, batch)
        # The policy as the algorithm's own update left it, on each minibatch of rollout states (PPG's
        # "behavioural cloning" anchor). SB3 distributions are re-filled in place, so each is copied.
        slices = {int(start): self._tensor(observations[start : start + batch]) for start in starts}
        with th.no_grad():
            anchors = {start: copy.copy(self.aux_policy.get_distribution(obs)) for start, obs in slices.items()}
        for start in np.tile(starts, self.aux_epochs):
            if start == 0:
                live_order = self.rng.permutation(len(live[0]))
            loss = th.zeros((), device=self.device)
            live_index = live_order[start : start + batch]
            if len(live_index) and self.dynamics_coef:
                dynamics = self._dynamics_loss(*(part[live_index] for part in live))
                loss = loss + self.dynamics_coef * dynamics
                dynamics_losses.append(float(dynamics.detach()))
            if offline is not None:
                index = self.rng.integers(len(offline), size=batch)
                if self.dynamics_coef:
                    dynamics = self._dynamics_loss(offline.observations[index], offline.actions[index],
                                                   offline.next_observations[index], offline.rewards[index])
                    loss = loss + self.dynamics_coef * dynamics
                    dynamics_losses.append(float(dynamics.detach()))
                obs = self._tensor(observations[start : start + batch])
                with th.no_grad():
                    prior = self.aux_policy.prior_distribution(obs)
                kl = kl_divergence(prior, self.aux_policy.get_distribution(obs)).mean()
                kls.append(float(kl.detach()))
                loss = loss + kl_weight * kl
                values, targets = self._offline_values(offline, index)
                value_loss = F.mse_loss(values, targets)
                loss = loss + value_weight * value_loss
                value_predictions.append(values.detach().cpu().numpy())
                value_targets.append(targets.cpu().numpy())
                value_losses.append(float(value_loss.detach()))
            if loss.requires_grad and clone_weight:
                current = self.aux_policy.get_distribution(slices[int(start)])
                loss = loss + clone_weight * kl_divergence(anchors[int(start)], current).mean()
            if loss.requires_grad:
                self.aux_optimizer.zero_grad()
                loss.backward()
                self.aux_optimizer.step()
        with th.no_grad():
            moved = [kl_divergence(anchor, self.aux_policy.get_distribution(slices[start])).mean()
                     for start, anchor in anchors.items()]
        self.logger.record("train/aux_policy_kl", float(th.stack(moved).mean()))
        if dynamics_losses:
            self.logger.record("train/dynamics_loss", float(np.mean(dynamics_losses)))
        if kls:
            self.logger.record("train/behaviour_prior_alignment", float(np.exp(-np.mean(kls))))
            self.logger.record("train/prior_kl_weight", kl_weight)
            self.logger.record("train/offline_value_loss", float(np.mean(value_losses)))
            self.logger.record("train/meta_value_alignment",
                               value_alignment(np.concatenate(value_predictions), np.concatenate(value_targets)))

    def _offline_values(self, offline: OfflineTransitions, index: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
        """Value predictions at offline states and their return targets (bootstrapped, no gradient)."""
        targets = offline.targets
        values = self.aux_policy.predict_values(self._tensor(offline.observations[index])).flatten()
        with th.no_grad():
            bootstrap = self.aux_policy.predict_values(
                self._tensor(offline.next_observations[targets.bootstrap[index]])).flatten()
        partial = self._tensor(targets.partial[index]).float()
        discount = self._tensor(targets.discount[index]).float()
        return values, partial + discount * bootstrap

