"""``SwarmPolicy``: an actor-critic for LatticeGrowth-v0 that shares its actor across agents and
across the four hop directions.

The observation holds one block per agent (its ``(2r+1) x (2r+1)`` patch of relative heights and
two height features) plus five global features; the action holds five biases per agent (hops
towards +x, -x, +y, -y, then deposition). The physics is the same around every agent and is
symmetric under the square lattice's rotations and reflections. So:

- every agent uses the same network (its slot in the swarm carries no meaning);
- the bias of the hop towards direction ``d`` is one function of the patch *seen from* ``d``: the
  patch is mirrored or transposed so that ``d`` points towards +x, and the same trunk and hop
  head are applied to each of the four views; the deposition bias comes from the mean of the
  four views' latents, so it does not depend on orientation.

Each RL step then gives 16 samples (4 agents x 4 directions) of one small hop function instead
of one sample of each of 20 unrelated outputs. That matters here: the effect of one step's
biases on the return is tiny next to the noise of the KMC events, and with a plain MLP PPO does
not find the "hop downhill" rule within the curriculum's budgets. The critic is a plain MLP on
the whole observation. Nothing depends on the lattice size, so a stage-1 model runs unchanged on
stage-2 and stage-3 lattices.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_ext.envs.lattice.env import EVENTS_PER_AGENT
from sb3_ext.envs.lattice.swarm import N_AGENT_EXTRAS, N_GLOBALS, observation_size

N_DIRECTIONS = 4  # hop slots +x, -x, +y, -y come first in each agent's action block


def directional_views(patches: th.Tensor) -> th.Tensor:
    """The four views ``[..., 4, side, side]`` of patches ``[..., side, side]`` (indexed ``[dx, dy]``).

    View ``d`` is a symmetry of the square lattice that maps hop direction ``d`` (+x, -x, +y, -y)
    onto +x, so the neighbour that hop would land on is always at ``[r + 1, r]``.
    """
    transposed = patches.transpose(-1, -2)
    return th.stack([patches, patches.flip(-2), transposed, transposed.flip(-2)], dim=-3)


class SwarmExtractor(nn.Module):
    """Actor latents ``[batch, n_swarm * 4 * hidden]`` (agent-major, then direction) and critic latents."""

    def __init__(self, n_swarm: int, patch_radius: int, hidden_size: int = 64):
        super().__init__()
        self.n_swarm = n_swarm
        self.side = 2 * patch_radius + 1
        self.block = self.side * self.side + N_AGENT_EXTRAS
        self.trunk = nn.Sequential(
            nn.Linear(self.block + N_GLOBALS, hidden_size), nn.Tanh(), nn.Linear(hidden_size, hidden_size), nn.Tanh()
        )
        self.critic_net = nn.Sequential(
            nn.Linear(observation_size(n_swarm, patch_radius), hidden_size), nn.Tanh(), nn.Linear(hidden_size, hidden_size), nn.Tanh()
        )
        self.latent_dim_pi = n_swarm * N_DIRECTIONS * hidden_size
        self.latent_dim_vf = hidden_size

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        batch, split, area = features.shape[0], self.n_swarm * self.block, self.side * self.side
        agents = features[:, :split].reshape(batch, self.n_swarm, self.block)
        views = directional_views(agents[..., :area].reshape(batch, self.n_swarm, self.side, self.side))
        invariant = th.cat([agents[..., area:], features[:, split:].unsqueeze(1).expand(-1, self.n_swarm, -1)], dim=-1)
        inputs = th.cat([views.flatten(-2), invariant.unsqueeze(2).expand(-1, -1, N_DIRECTIONS, -1)], dim=-1)
        return self.trunk(inputs).flatten(1)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.critic_net(features)

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)


class SwarmActionHead(nn.Module):
    """Mean actions ``[batch, n_swarm * 5]`` from the directional latents.

    One linear map gives each direction's hop bias from its own view's latent; another gives the
    deposition bias from the mean latent over the four views.
    """

    def __init__(self, hidden_size: int, n_swarm: int):
        super().__init__()
        self.n_swarm = n_swarm
        self.hop = nn.Linear(hidden_size, 1)
        self.deposit = nn.Linear(hidden_size, 1)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        latent = latent.reshape(latent.shape[0], self.n_swarm, N_DIRECTIONS, -1)
        hops = self.hop(latent).squeeze(-1)
        deposit = self.deposit(latent.mean(dim=2))
        return th.cat([hops, deposit], dim=-1).flatten(1)


class SwarmPolicy(ActorCriticPolicy):
    """Actor-critic policy for LatticeGrowth-v0, shared across agents and hop directions.

    Use it as ``PPO(SwarmPolicy, env, policy_kwargs={"n_swarm": 4})``.

    :param n_swarm: agents per step (the env's ``n_swarm``).
    :param patch_radius: the env's ``patch_radius``.
    :param hidden_size: width of the two hidden layers of the actor trunk and of the critic.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        n_swarm: int = 4,
        patch_radius: int = 2,
        hidden_size: int = 64,
        **kwargs: Any,
    ):
        expected_obs, expected_actions = observation_size(n_swarm, patch_radius), n_swarm * EVENTS_PER_AGENT
        if observation_space.shape != (expected_obs,) or action_space.shape != (expected_actions,):
            raise ValueError(
                f"SwarmPolicy(n_swarm={n_swarm}, patch_radius={patch_radius}) expects observations of shape "
                f"({expected_obs},) and actions of shape ({expected_actions},), got {observation_space.shape} "
                f"and {action_space.shape}"
            )
        self.n_swarm = n_swarm
        self.patch_radius = patch_radius
        self.hidden_size = hidden_size
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = SwarmExtractor(self.n_swarm, self.patch_radius, self.hidden_size)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        # SB3 builds one Linear over the whole latent; use the shared head instead (with SB3's
        # small orthogonal initial weights for action outputs) and rebuild the optimizer so that
        # it holds the new head's parameters.
        self.action_net = SwarmActionHead(self.hidden_size, self.n_swarm)
        if self.ortho_init:
            self.action_net.apply(lambda module: self.init_weights(module, gain=0.01))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(n_swarm=self.n_swarm, patch_radius=self.patch_radius, hidden_size=self.hidden_size)
        return data


__all__ = ["SwarmActionHead", "SwarmExtractor", "SwarmPolicy", "directional_views"]
