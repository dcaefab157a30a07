"""Create a stage's PPO model, fresh or from a saved model, with the stage's own settings in effect.

``PPO.load`` restores the hyperparameters stored in the .zip. Stage N+1 must train with *its*
learning rate, entropy coefficient, clip range, rollout length... so :func:`load_for_stage`
replaces every PPO setting through ``custom_objects`` before the model is rebuilt. ``load`` then
runs ``_setup_model``, which recreates the learning-rate and clip-range schedules from the new
values and the rollout buffer for the new ``n_steps`` and number of environments; the optimizer's
learning rate, restored from the file with its Adam state, is reset to the new schedule as well.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.utils import FloatSchedule, update_learning_rate
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.curriculum.config import PPOConfig


def ppo_kwargs(ppo: PPOConfig) -> dict[str, Any]:
    """The stage file's ``ppo:`` section as PPO keyword arguments."""
    return dataclasses.asdict(ppo)


def new_model(ppo: PPOConfig, env: VecEnv, seed: int, device: str = "auto") -> PPO:
    """A fresh ``PPO("MlpPolicy", env)`` with the stage's settings.

    SB3's MLP is enough: the environment already presents each agent in its own frame (local +x
    is its lowest neighbour), so "hop downhill" is a plain output bias for the policy to learn.
    """
    return PPO("MlpPolicy", env, seed=seed, device=device, verbose=0, **ppo_kwargs(ppo))


def load_for_stage(path: str | Path, env: VecEnv, ppo: PPOConfig, device: str = "auto") -> PPO:
    """Load a saved PPO model to train on ``env`` with the settings of ``ppo`` (not the saved ones).

    The weights, the Adam moments and ``num_timesteps`` (so the step axis stays continuous) come
    from the file; every setting of the stage's ``ppo:`` section comes from ``ppo``.
    """
    settings = ppo_kwargs(ppo)
    custom_objects = {
        **settings,
        # Replaced rather than unpickled: rebuilt from ``learning_rate`` by ``_setup_model``.
        "lr_schedule": FloatSchedule(ppo.learning_rate),
    }
    model = PPO.load(path, env=env, device=device, custom_objects=custom_objects)
    update_learning_rate(model.policy.optimizer, model.lr_schedule(model._current_progress_remaining))
    return model
