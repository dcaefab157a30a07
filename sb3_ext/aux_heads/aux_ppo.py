"""AuxPPO: SB3's PPO followed, each update, by the auxiliary phase of :class:`~sb3_ext.aux_heads.mixin.AuxiliaryHeadsMixin`."""

from __future__ import annotations

import os
from typing import Any

import torch as th

from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from sb3_ext.aux_heads.mixin import AuxiliaryHeadsMixin


class AuxPPO(AuxiliaryHeadsMixin, PPO):
    """PPO with a dynamics head, a behaviour prior fitted on offline data and offline value targets.

    See :class:`~sb3_ext.aux_heads.AuxiliaryHeadsMixin` for the auxiliary phase and its arguments;
    everything else is SB3's PPO. ``policy="MlpPolicy"`` means
    :class:`~sb3_ext.aux_heads.AuxiliaryActorCriticPolicy`.
    """

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        offline_data: str | os.PathLike | None = None,
        dynamics_coef: float = 0.5,
        prior_kl_coef: float = 1.0,
        prior_kl_steps: int = 50_000,
        offline_value_coef: float = 0.5,
        prior_epochs: int = 20,
        aux_batch_size: int | None = None,
        aux_epochs: int = 2,
        warm_start_epochs: int = 5,
        clone_coef: float = 1.0,
        _init_setup_model: bool = True,
    ) -> None:
        self._set_auxiliary_options(
            env, offline_data=offline_data, dynamics_coef=dynamics_coef, prior_kl_coef=prior_kl_coef,
            prior_kl_steps=prior_kl_steps, offline_value_coef=offline_value_coef, prior_epochs=prior_epochs,
            aux_batch_size=aux_batch_size, aux_epochs=aux_epochs, warm_start_epochs=warm_start_epochs,
            clone_coef=clone_coef,
        )
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            target_kl=target_kl,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )
