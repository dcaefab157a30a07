"""``NCAPolicy``: an SB3 actor-critic whose features come from a neural cellular automaton.

How does a policy that SB3 calls one row at a time see its neighbours? SB3 shuffles rollout
rows into minibatches, so a row cannot rely on the other rows of its batch; the observation
itself must carry the neighbourhood. The env therefore gives every slot the observations of all
agents of its env copy, its own first (``AgentSlotsVecEnv(joint_observation=True)``, or
``make_swarm2d_vec_env(..., joint_observation=True)``). The policy runs the automaton over that
whole copy and acts from the hidden state of the first agent, so every row is self-contained
and any SB3 algorithm (PPO, SharedActor) trains it unchanged. MAAC, which sees whole copies
anyway, uses :class:`~sb3_ext.nca.core.NCACore` directly as its actor.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_ext.nca.core import NCACore


class NCAExtractor(BaseFeaturesExtractor):
    """Features of the first agent of a joint observation ``(n_agents, obs_dim)`` after the NCA rounds.

    :param observation_space: ``Box`` of shape ``(n_agents, obs_dim)``, the observing agent first.
    :param hidden_dim: NCA hidden size (the features' size).
    :param nca_iterations: NCA rounds.
    :param n_neighbours: K nearest agents each agent listens to.
    :param position_indices: where the 2-D position sits in an agent's observation (or ``None``).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        hidden_dim: int = 64,
        nca_iterations: int = 2,
        n_neighbours: int = 4,
        position_indices: tuple[int, int] | None = (0, 2),
    ) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 2:
            raise ValueError(
                f"NCAPolicy: observation space {observation_space} is not (n_agents, obs_dim); build the env with "
                "joint_observation=True (make_swarm2d_vec_env / make_parallel_vec_env / AgentSlotsVecEnv)"
            )
        super().__init__(observation_space, features_dim=hidden_dim)
        self.core = NCACore(observation_space.shape[1], hidden_dim, nca_iterations, n_neighbours, position_indices)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.core(observations)[:, 0]


class NCAPolicy(ActorCriticPolicy):
    """Actor-critic (PPO, SharedActor) on NCA features of the agent's whole env copy.

    ``nca_iterations``, ``n_neighbours``, ``nca_hidden_dim`` and ``position_indices`` configure
    the automaton (see :class:`~sb3_ext.nca.core.NCACore`); the other arguments are those of
    ``ActorCriticPolicy``. The observation space must be joint: ``(n_agents, obs_dim)``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Any,
        nca_iterations: int = 2,
        n_neighbours: int = 4,
        nca_hidden_dim: int = 64,
        position_indices: tuple[int, int] | None = (0, 2),
        **kwargs: Any,
    ) -> None:
        self.nca_kwargs = dict(
            hidden_dim=nca_hidden_dim,
            nca_iterations=nca_iterations,
            n_neighbours=n_neighbours,
            position_indices=position_indices,
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=NCAExtractor,
            features_extractor_kwargs=self.nca_kwargs,
            **kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["features_extractor_class"], data["features_extractor_kwargs"]
        kwargs = self.nca_kwargs
        data.update(
            nca_iterations=kwargs["nca_iterations"],
            n_neighbours=kwargs["n_neighbours"],
            nca_hidden_dim=kwargs["hidden_dim"],
            position_indices=kwargs["position_indices"],
        )
        return data
