"""Stage transfer: a model continues from a saved one's weights with its *own* settings in effect.

``PPO.load`` restores the hyperparameters stored in the .zip; stage N+1 must train with *its*
learning rate, entropy coefficient, clip range, rollout length... The one mechanism has two
entry points, for the two ways a model comes to exist:

- :func:`load_for_stage` (the curriculum runner) builds the model from the file: every PPO
  setting is replaced through ``custom_objects`` before ``load`` runs ``_setup_model``, which
  recreates the schedules and the rollout buffer; weights, Adam moments and the step counters
  come from the file, so the run's step axis stays continuous (and resuming a stage is the same call).
- :class:`CurriculumTransfer` (a callback, for rl-zoo3 YAML) fills a model rl-zoo3 already built
  with the file's weights (and optionally the Adam moments) through SB3's ``set_parameters``.

Both check the spaces against the file and put the optimizer's learning rate, restored with its
Adam state, back on the model's own schedule (:func:`use_own_learning_rate`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import load_from_zip_file
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
    use_own_learning_rate(model)
    return model


def use_own_learning_rate(model: BaseAlgorithm) -> None:
    """Set the optimizer's rate, restored from a file with its Adam state, from the model's own schedule."""
    # SB3 applies the schedule only at the next train(); until then the file's rate would stand.
    # The progress the schedule reads is kept only in the private _current_progress_remaining.
    update_learning_rate(model.policy.optimizer, model.lr_schedule(model._current_progress_remaining))


class CurriculumTransfer(BaseCallback):
    """Load the network weights of a saved model (e.g. ``stage1_final.zip``) before training starts.

    Unlike ``PPO.load``, which restores the *saved* hyperparameters, this keeps the model's own
    learning rate, entropy coefficient, clip range, ``n_steps``... (the ones the next stage asks
    for) and only copies the policy and value networks. With ``load_optimizer=True`` the Adam
    moments come along too, with the learning rate reset to this model's schedule.

    The weights are loaded once, when the callback is first attached to a model, so calling
    ``learn()`` again does not undo training. From an rl-zoo3 YAML::

        callback:
          - sb3_ext.callbacks.CurriculumTransfer:
              load_path: runs/stage1/stage1_final.zip

    :param load_path: saved model (.zip) of the same policy architecture and spaces.
    :param load_optimizer: also copy the optimizer state.
    :param verbose: 1 to print where the weights came from.
    """

    def __init__(self, load_path: str, load_optimizer: bool = False, verbose: int = 0):
        super().__init__(verbose=verbose)
        self.load_path = Path(load_path)
        self.load_optimizer = load_optimizer
        self.loaded = False

    def _init_callback(self) -> None:
        if self.loaded:
            return
        if not self.load_path.is_file():
            raise ValueError(f"CurriculumTransfer: load_path {str(self.load_path)!r} is not a file")
        data, params, _ = load_from_zip_file(self.load_path, device=self.model.device)
        if data is None:
            raise ValueError(f"CurriculumTransfer: {str(self.load_path)!r} holds no model data")
        for space in ("observation_space", "action_space"):
            saved, ours = (data or {}).get(space), getattr(self.model, space)
            if saved != ours:
                raise ValueError(
                    f"CurriculumTransfer: {self.load_path} was trained with {space} {saved}, this model has {ours}"
                )
        wanted = ("policy", "policy.optimizer") if self.load_optimizer else ("policy",)
        self.model.set_parameters({name: params[name] for name in wanted}, exact_match=False, device=self.model.device)
        if self.load_optimizer:
            use_own_learning_rate(self.model)
        self.loaded = True
        if self.verbose >= 1:
            print(f"CurriculumTransfer: loaded weights from {self.load_path}")

    def _on_step(self) -> bool:
        return True
