"""Policies for QuantileDQN: twin quantile heads and risk-aware greedy acting."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_ext.common.critic_heads import CriticHeads, check_n_critics
from sb3_ext.quantile_dqn.risk import check_risk, risk_score


class TwinQuantileNetwork(QuantileNetwork):
    """
    Quantile network with ``n_critics`` heads on one features extractor.

    ``forward`` returns the heads' mean quantiles ``(batch, n_quantiles, n_actions)`` as sb3-contrib's
    ``QuantileNetwork`` does; ``forward_critics`` returns every head. Acting is greedy in
    ``risk_score``: the mean of the quantiles, or their lower-tail CVaR at level ``risk_alpha``.

    :param n_critics: number of quantile heads
    :param share_trunk: share the hidden layers between heads (see ``CriticHeads``)
    :param risk_measure: ``"mean"`` or ``"cvar"``
    :param risk_alpha: CVaR level in ``(0, 1]``: the fraction of worst outcomes averaged
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        n_quantiles: int = 25,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_trunk: bool = True,
        risk_measure: str = "mean",
        risk_alpha: float = 0.25,
    ) -> None:
        check_risk(risk_measure, risk_alpha)
        super().__init__(
            observation_space,
            action_space,
            features_extractor,
            features_dim,
            n_quantiles=n_quantiles,
            net_arch=net_arch,
            activation_fn=activation_fn,
            normalize_images=normalize_images,
        )
        self.n_critics = n_critics
        self.share_trunk = share_trunk
        self.risk_measure = risk_measure
        self.risk_alpha = risk_alpha
        # Replaces the single-head MLP built by QuantileNetwork.__init__.
        # (QuantileNetwork declares a Sequential; CriticHeads is called the same way.)
        self.quantile_net = CriticHeads(  # type: ignore[assignment]
            self.features_dim,
            self.n_quantiles * int(self.action_space.n),
            self.net_arch,
            self.activation_fn,
            n_critics,
            share_trunk,
        )

    def forward_critics(self, obs: PyTorchObs) -> th.Tensor:
        """Quantiles of every head, ``(batch, n_critics, n_quantiles, n_actions)``."""
        heads = self.quantile_net(self.extract_features(obs, self.features_extractor))
        return heads.view(-1, self.n_critics, self.n_quantiles, int(self.action_space.n))

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        return self.forward_critics(obs).mean(dim=1)

    def action_scores(self, quantiles: th.Tensor) -> th.Tensor:
        """Per-action value under the risk measure, from quantiles ``(batch, n_quantiles, n_actions)``."""
        return risk_score(quantiles, self.risk_measure, self.risk_alpha, dim=1)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.action_scores(self(observation)).argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            n_critics=self.n_critics,
            share_trunk=self.share_trunk,
            risk_measure=self.risk_measure,
            risk_alpha=self.risk_alpha,
        )
        return data


class QuantileDQNPolicy(QRDQNPolicy):
    """
    QR-DQN policy whose quantile and target networks are ``TwinQuantileNetwork``s.

    Takes QRDQNPolicy's arguments (``n_quantiles`` defaults to 25 here) plus:

    :param n_critics: number of quantile heads (2: twin; 1: a single QR-DQN head)
    :param share_trunk: share the hidden layers between heads (cheaper) or give each head its own MLP
    :param risk_measure: ``"mean"`` or ``"cvar"``, used for acting and for the greedy next action
    :param risk_alpha: CVaR level in ``(0, 1]``
    """

    quantile_net: TwinQuantileNetwork
    quantile_net_target: TwinQuantileNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_quantiles: int = 25,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_trunk: bool = True,
        risk_measure: str = "mean",
        risk_alpha: float = 0.25,
    ) -> None:
        check_risk(risk_measure, risk_alpha)
        # Set before QRDQNPolicy.__init__, which builds the networks through make_quantile_net().
        self.n_critics = check_n_critics(n_critics)
        self.share_trunk = share_trunk
        self.risk_measure = risk_measure
        self.risk_alpha = risk_alpha
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            n_quantiles=n_quantiles,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def _head_options(self) -> dict[str, Any]:
        return dict(
            n_critics=self.n_critics,
            share_trunk=self.share_trunk,
            risk_measure=self.risk_measure,
            risk_alpha=self.risk_alpha,
        )

    def make_quantile_net(self) -> TwinQuantileNetwork:
        # A fresh features extractor per network, as in QRDQNPolicy: the target gets its own copy.
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return TwinQuantileNetwork(**net_args, **self._head_options()).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self._head_options())
        return data


MlpPolicy = QuantileDQNPolicy


class CnnPolicy(QuantileDQNPolicy):
    """QuantileDQN policy for image observations (NatureCNN features extractor)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)


class MultiInputPolicy(QuantileDQNPolicy):
    """QuantileDQN policy for ``Dict`` observations (CombinedExtractor features extractor)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(*args, **kwargs)
