"""AuxiliaryActorCriticPolicy: SB3's actor-critic with a dynamics head and a behaviour-prior head."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    Distribution,
    StateDependentNoiseDistribution,
    make_proba_distribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn
from torch.nn import functional as F


def encode_actions(actions: th.Tensor, action_space: spaces.Space) -> th.Tensor:
    """Actions as a flat float vector per row: one-hot for discrete spaces, [-1, 1]-scaled bounded boxes."""
    if isinstance(action_space, spaces.Discrete):
        return F.one_hot(actions.long().reshape(-1), int(action_space.n)).float()
    if isinstance(action_space, spaces.MultiDiscrete):
        actions = actions.long().reshape(-1, len(action_space.nvec))
        return th.cat([F.one_hot(actions[:, i], int(n)) for i, n in enumerate(action_space.nvec)], dim=1).float()
    if isinstance(action_space, spaces.Box):
        actions = actions.float().reshape(len(actions), -1)
        low = th.as_tensor(action_space.low, device=actions.device).reshape(1, -1)
        high = th.as_tensor(action_space.high, device=actions.device).reshape(1, -1)
        if th.isfinite(low).all() and th.isfinite(high).all():
            actions = 2.0 * (actions.clamp(low, high) - low) / (high - low) - 1.0
        return actions
    return actions.float().reshape(len(actions), -1)  # MultiBinary


def action_width(action_space: spaces.Space) -> int:
    """Width of :func:`encode_actions`' output."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(sum(action_space.nvec))
    return int(spaces.flatdim(action_space))


class AuxiliaryActorCriticPolicy(ActorCriticPolicy):
    """SB3's ``ActorCriticPolicy`` plus two heads that :class:`~sb3_ext.aux_heads.AuxPPO` and
    :class:`~sb3_ext.aux_heads.AuxA2C` train in an auxiliary phase after each update:

    - a **dynamics head** on the actor's latent features and the action, predicting the change of
      the (preprocessed, flattened) observation and the reward. Its loss may flow into the actor's
      layers, shaping the policy's features to carry what predicts the environment;
    - a **behaviour-prior head**, a separate network with the policy's own kind of action
      distribution, fitted by maximum likelihood on offline transitions. It is never updated by
      the policy's losses; the algorithm pulls the policy towards it with a KL term.

    Acting, evaluation and saving are SB3's unchanged; the heads only add parameters.
    Observations must be Box, Discrete, MultiDiscrete or MultiBinary (no Dict) and gSDE is not
    supported (the prior is a plain distribution of the same kind).

    :param aux_net_arch: hidden layers of the dynamics head and of the behaviour-prior network
    """

    def __init__(self, *args: Any, aux_net_arch: list[int] | None = None, **kwargs: Any) -> None:
        self.aux_net_arch = [64, 64] if aux_net_arch is None else list(aux_net_arch)
        super().__init__(*args, **kwargs)
        if isinstance(self.observation_space, spaces.Dict):
            raise ValueError(
                f"AuxiliaryActorCriticPolicy: Dict observation spaces are not supported, got {self.observation_space}"
            )
        if isinstance(self.action_dist, StateDependentNoiseDistribution):
            raise ValueError("AuxiliaryActorCriticPolicy: use_sde=True is not supported")

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        # Built here, before ActorCriticPolicy._build creates the optimizer over self.parameters(), and
        # on a forked random stream: the heads draw their initial weights without moving torch's global
        # generator, so the actor and critic start exactly as SB3's ActorCriticPolicy does with the same
        # seed (a comparison with plain PPO then differs by the auxiliary losses only).
        with th.random.fork_rng(devices=[]):
            self._build_auxiliary_heads()

    def _build_auxiliary_heads(self) -> None:
        obs_width = spaces.flatdim(self.observation_space)
        self.dynamics_head = nn.Sequential(
            *create_mlp(
                self.mlp_extractor.latent_dim_pi + action_width(self.action_space),
                obs_width + 1,
                self.aux_net_arch,
                self.activation_fn,
            )
        )
        self.prior_dist: Distribution = make_proba_distribution(self.action_space)
        self.prior_net: nn.Module
        self.prior_body = nn.Sequential(*create_mlp(self.features_dim, -1, self.aux_net_arch, self.activation_fn))
        latent = self.aux_net_arch[-1] if self.aux_net_arch else self.features_dim
        if isinstance(self.prior_dist, DiagGaussianDistribution):
            self.prior_net, self.prior_log_std = self.prior_dist.proba_distribution_net(latent, log_std_init=0.0)
        else:
            self.prior_net = self.prior_dist.proba_distribution_net(latent)  # type: ignore[assignment]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["aux_net_arch"] = self.aux_net_arch
        return data

    def prior_parameters(self) -> list[nn.Parameter]:
        """The behaviour-prior network's parameters (fitted on their own, on offline data only)."""
        parameters = list(self.prior_body.parameters()) + list(self.prior_net.parameters())
        return parameters + ([self.prior_log_std] if hasattr(self, "prior_log_std") else [])

    def prior_distribution(self, obs: th.Tensor) -> Distribution:
        """The behaviour prior's action distribution at ``obs`` (a fresh object each call)."""
        latent = self.prior_body(self.extract_features(obs, self.pi_features_extractor))
        dist = make_proba_distribution(self.action_space)
        if isinstance(dist, DiagGaussianDistribution):
            return dist.proba_distribution(self.prior_net(latent), self.prior_log_std)
        return dist.proba_distribution(action_logits=self.prior_net(latent))

    def dynamics_prediction(
        self, obs: th.Tensor, actions: th.Tensor, shape_features: bool = True
    ) -> tuple[th.Tensor, th.Tensor]:
        """(predicted change of the flattened preprocessed observation, predicted reward).

        :param shape_features: let the loss of this prediction flow into the actor's layers (False:
            the head learns on the actor's features as they are)
        """
        features = self.extract_features(obs, self.pi_features_extractor)
        assert isinstance(features, th.Tensor)  # the actor's own features extractor
        latent_pi = self.mlp_extractor.forward_actor(features)
        if not shape_features:
            latent_pi = latent_pi.detach()
        out = self.dynamics_head(th.cat([latent_pi, encode_actions(actions, self.action_space)], dim=1))
        return out[:, :-1], out[:, -1]

    def flat_observation(self, obs: th.Tensor) -> th.Tensor:
        """Observations preprocessed as the networks see them (one-hot, scaled images), flattened."""
        flat = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        assert isinstance(flat, th.Tensor)  # Dict spaces are refused in __init__
        return flat.float().reshape(len(obs), -1)
