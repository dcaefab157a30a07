"""Warm-start a model from an earlier curriculum stage while keeping its own hyperparameters."""

from __future__ import annotations

from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.utils import update_learning_rate


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
        for space in ("observation_space", "action_space"):
            saved, ours = data.get(space), getattr(self.model, space)
            if saved != ours:
                raise ValueError(
                    f"CurriculumTransfer: {self.load_path} was trained with {space} {saved}, this model has {ours}"
                )
        self.model.policy.load_state_dict(params["policy"])
        if self.load_optimizer:
            optimizer = self.model.policy.optimizer
            optimizer.load_state_dict(params["policy.optimizer"])
            update_learning_rate(optimizer, self.model.lr_schedule(self.model._current_progress_remaining))
        self.loaded = True
        if self.verbose >= 1:
            print(f"CurriculumTransfer: loaded weights from {self.load_path}")

    def _on_step(self) -> bool:
        return True
