"""Policies for TwinDQN: ``n_critics`` Q heads on one features extractor, each with a target copy."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from sb3_ext.common.critic_heads import CriticHeads, check_n_critics


class TwinQNetwork(QNetwork):
    """
    Q-network with ``n_critics`` heads on one features extractor.

    ``forward`` returns the heads' mean ``(batch, n_actions)``, so acting (``_predict``) and any code
    written for SB3's ``QNetwork`` use the mean; ``forward_critics`` returns every head.

    :param n_critics: number of Q heads
    :param share_trunk: share the hidden layers between heads (see ``CriticHeads``)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_trunk: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor,
            features_dim,
            net_arch=net_arch,
            activation_fn=activation_fn,
            normalize_images=normalize_images,
        )
        self.n_critics = n_critics
        self.share_trunk = share_trunk
        # Replaces the single-head MLP built by QNetwork.__init__.
        # (QNetwork declares a Sequential; CriticHeads is called the same way.)
        self.q_net = CriticHeads(  # type: ignore[assignment]
            self.features_dim, int(self.action_space.n), self.net_arch, self.activation_fn, n_critics, share_trunk
        )

    def forward_critics(self, obs: PyTorchObs) -> th.Tensor:
        """Q-values of every head, ``(batch, n_critics, n_actions)``."""
        return self.q_net(self.extract_features(obs, self.features_extractor))

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        return self.forward_critics(obs).mean(dim=1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(n_critics=self.n_critics, share_trunk=self.share_trunk)
        return data


class TwinDQNPolicy(DQNPolicy):
    """
    DQN policy whose Q-network and target network are ``TwinQNetwork``s.

    Takes DQNPolicy's arguments plus:

    :param n_critics: number of Q heads (2: twin critics)
    :param share_trunk: share the hidden layers between heads (cheaper) or give each head its own MLP
    """

    q_net: TwinQNetwork
    q_net_target: TwinQNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_trunk: bool = True,
    ) -> None:
        # Set before DQNPolicy.__init__, which builds the networks through make_q_net().
        self.n_critics = check_n_critics(n_critics)
        self.share_trunk = share_trunk
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def make_q_net(self) -> TwinQNetwork:
        # A fresh features extractor per network, as in DQNPolicy: the target gets its own copy.
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return TwinQNetwork(**net_args, n_critics=self.n_critics, share_trunk=self.share_trunk).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(n_critics=self.n_critics, share_trunk=self.share_trunk)
        return data


MlpPolicy = TwinDQNPolicy


class CnnPolicy(TwinDQNPolicy):
    """TwinDQN policy for image observations (NatureCNN features extractor)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)


class MultiInputPolicy(TwinDQNPolicy):
    """TwinDQN policy for ``Dict`` observations (CombinedExtractor features extractor)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(*args, **kwargs)
