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
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn


def check_n_critics(n_critics: int) -> int:
    """Return ``n_critics`` if it is a positive integer, else raise a one-line ``ValueError``."""
    if isinstance(n_critics, bool) or not isinstance(n_critics, int) or n_critics < 1:
        raise ValueError(f"n_critics={n_critics!r} is not supported; expected an integer >= 1")
    return n_critics


class CriticHeads(nn.Module):
    """
    ``n_critics`` output heads on one feature vector, returned as ``(batch, n_critics, out_dim)``.

    With ``share_trunk=True`` the hidden layers (``net_arch``) are shared and only the output layer
    differs per critic; the output layers are stored as one ``nn.Linear`` of width
    ``n_critics * out_dim``, which is the same function as separate layers in a single matmul.
    With ``share_trunk=False`` every critic is its own MLP, as the two critics of TD3 are.

    :param features_dim: size of the feature vector
    :param out_dim: outputs per critic (``n_actions`` for Q-values, ``n_quantiles * n_actions`` for quantiles)
    :param net_arch: hidden layer sizes
    :param activation_fn: activation after each hidden layer
    :param n_critics: number of heads
    :param share_trunk: share the hidden layers between heads
    """

    def __init__(
        self,
        features_dim: int,
        out_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        n_critics: int,
        share_trunk: bool,
    ) -> None:
        super().__init__()
        self.n_critics = check_n_critics(n_critics)
        self.out_dim = out_dim
        self.share_trunk = share_trunk
        if share_trunk:
            # create_mlp with output_dim=-1 builds the hidden layers only.
            self.trunk = nn.Sequential(*create_mlp(features_dim, -1, net_arch, activation_fn))
            last_dim = net_arch[-1] if net_arch else features_dim
            self.output = nn.Linear(last_dim, n_critics * out_dim)
        else:
            self.critics = nn.ModuleList(
                nn.Sequential(*create_mlp(features_dim, out_dim, net_arch, activation_fn)) for _ in range(n_critics)
            )

    def forward(self, features: th.Tensor) -> th.Tensor:
        if self.share_trunk:
            return self.output(self.trunk(features)).view(-1, self.n_critics, self.out_dim)
        return th.stack([critic(features) for critic in self.critics], dim=1)


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
        self.q_net = CriticHeads(
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

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class MultiInputPolicy(TwinDQNPolicy):
    """TwinDQN policy for ``Dict`` observations (CombinedExtractor features extractor)."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any
    ):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)
