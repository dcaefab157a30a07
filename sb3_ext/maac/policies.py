"""MAAC's networks: the attention critic, the soft actors and the SB3 policy that holds them.

Every network works on whole env copies: observations ``(batch, n_agents, obs_dim)``.
Continuous actions are tanh-squashed Gaussians in ``[-1, 1]`` (SB3 rescales them to the env's
bounds); discrete actions are categorical and reach the critic one-hot encoded.
"""

from __future__ import annotations

import copy
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from sb3_ext.maac.layers import AgentAttention, AgentwiseLinear, Attention, agentwise_mlp
from sb3_ext.nca.core import NCACore

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class AttentionCritic(nn.Module):
    """Q of every agent from its own observation-action and attention over the others (MAAC).

    ``Q_i(o, a) = f_i(g_i(o_i, a_i), x_i)`` with ``g_i`` the agent's observation-action encoder,
    ``x_i`` the attention of agent ``i`` over the encodings ``g_j(o_j, a_j)`` of the others (keys,
    queries and values shared by all agents) and ``f_i`` its Q head. As in the authors' code, the
    query comes from an observation-only encoder, so ``x_i`` does not depend on ``a_i``: the
    counterfactual baseline only re-evaluates ``f_i(g_i(o_i, a_i'), x_i)`` for other ``a_i'``.

    :param n_agents: agents per env copy.
    :param obs_dim: one agent's observation size.
    :param action_dim: one agent's action size (number of actions, one-hot, if discrete).
    :param hidden_dim: encoding size.
    :param n_heads: attention heads.
    :param share_agent_networks: one encoder and Q head for all agents (the paper has one each).
    """

    optimizer: th.optim.Optimizer  # set by MAACPolicy, as SB3 sets its actors' and critics' optimizers

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        action_dim: int,
        hidden_dim: int = 128,
        n_heads: int = 4,
        share_agent_networks: bool = False,
    ) -> None:
        super().__init__()
        shared = share_agent_networks
        self.action_encoder = agentwise_mlp(n_agents, [obs_dim + action_dim, hidden_dim], shared, nn.LeakyReLU)
        self.observation_encoder = agentwise_mlp(n_agents, [obs_dim, hidden_dim], shared, nn.LeakyReLU)
        self.attention = AgentAttention(hidden_dim, n_heads)
        self.q_head = agentwise_mlp(n_agents, [2 * hidden_dim, hidden_dim, 1], shared, nn.LeakyReLU, activate_last=False)

    def attend(self, obs: th.Tensor, actions: th.Tensor) -> Attention:
        """Each agent's attention over the other agents' observation-action encodings."""
        encodings = self.action_encoder(th.cat([obs, actions], dim=-1))
        return self.attention(self.observation_encoder(obs), encodings)

    def q_values(self, obs: th.Tensor, own_actions: th.Tensor, attention: Attention) -> th.Tensor:
        """Q of every agent for ``own_actions`` ``(..., batch, n_agents, action_dim)``, the others'
        actions being those ``attention`` was computed with. Returns ``(..., batch, n_agents)``."""
        leading = own_actions.shape[:-3]
        obs = obs.expand(*leading, *obs.shape)
        attended = attention.values.expand(*leading, *attention.values.shape)
        own = self.action_encoder(th.cat([obs, own_actions], dim=-1))
        return self.q_head(th.cat([own, attended], dim=-1)).squeeze(-1)

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, Attention]:
        """``Q_i(o, a)`` for every agent ``(batch, n_agents)``, and the attention behind it."""
        attention = self.attend(obs, actions)
        return self.q_values(obs, actions, attention), attention


class MultiAgentActor(nn.Module):
    """Soft policies of all agents of an env copy: a trunk gives each agent features, a head
    turns them into its action distribution.

    :param trunk: ``(batch, n_agents, obs_dim) -> (batch, n_agents, features_dim)``; an MLP per
        agent, or an NCA whose agents read their neighbours.
    :param features_dim: trunk output size.
    :param action_space: one agent's action space (Box or Discrete).
    :param n_agents: agents per env copy.
    :param shared: one head for all agents.
    """

    optimizer: th.optim.Optimizer  # set by MAACPolicy, as SB3 sets its actors' and critics' optimizers

    def __init__(
        self, trunk: nn.Module, features_dim: int, action_space: spaces.Space, n_agents: int, shared: bool
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.discrete = isinstance(action_space, spaces.Discrete)
        if isinstance(action_space, spaces.Discrete):
            self.logits = AgentwiseLinear(n_agents, features_dim, int(action_space.n), shared)
        elif isinstance(action_space, spaces.Box):
            action_dim = int(action_space.shape[0])
            self.mean = AgentwiseLinear(n_agents, features_dim, action_dim, shared)
            self.log_std = AgentwiseLinear(n_agents, features_dim, action_dim, shared)
        else:
            raise ValueError(f"MAAC: action space {action_space} is neither Discrete nor a flat Box")

    def _gaussian(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        features = self.trunk(obs)
        log_std = self.log_std(features).clamp(LOG_STD_MIN, LOG_STD_MAX)
        return self.mean(features), log_std.exp()

    def log_probs(self, obs: th.Tensor) -> th.Tensor:
        """Discrete only: ``log pi(a | o_i)`` for every action, ``(batch, n_agents, n_actions)``."""
        return F.log_softmax(self.logits(self.trunk(obs)), dim=-1)

    def sample(self, obs: th.Tensor, n_samples: int | None = None) -> tuple[th.Tensor, th.Tensor]:
        """Actions and their log-probabilities ``(batch, n_agents)``; with ``n_samples``, that many
        per agent in a leading axis. Samples carry no gradient; log-probabilities do (they are the
        score-function terms of MAAC's policy gradient)."""
        shape = () if n_samples is None else (n_samples,)
        if self.discrete:
            log_probs = self.log_probs(obs)
            actions = th.distributions.Categorical(logits=log_probs.detach()).sample(shape)
            return actions, log_probs.expand(*shape, *log_probs.shape).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        # A tanh-squashed Gaussian written out, because SB3's distributions sum log-probabilities
        # over axis 1 and our tensors carry the agents there.
        mean, std = self._gaussian(obs)
        normal = th.distributions.Normal(mean, std)
        gaussian = normal.sample(shape)
        actions = th.tanh(gaussian)
        log_prob = normal.log_prob(gaussian).sum(-1) - th.log(1.0 - actions.pow(2) + 1e-6).sum(-1)
        return actions, log_prob

    def act(self, obs: th.Tensor, deterministic: bool) -> th.Tensor:
        """Actions for the env: the mode if ``deterministic``, else a sample."""
        if not deterministic:
            return self.sample(obs)[0]
        if self.discrete:
            return self.log_probs(obs).argmax(dim=-1)
        return th.tanh(self._gaussian(obs)[0])


class MAACPolicy(BasePolicy):
    """Actors, attention critic and target critic of MAAC, behind SB3's policy interface.

    ``predict`` takes whole env copies: ``n_copies * n_agents`` rows in slot order.

    :param observation_space: one agent's observation space.
    :param action_space: one agent's action space.
    :param lr_schedule: learning-rate schedule (actor and critic optimizers).
    :param n_agents: agents per env copy (set by MAAC from the env).
    :param net_arch: hidden sizes of the actor MLP.
    :param share_actor: one actor for all agents (parameter sharing), else one per agent.
    :param critic_hidden_dim: encoding size of the critic.
    :param attention_heads: heads of the critic's attention.
    :param share_critic: one critic encoder and Q head for all agents.
    :param activation_fn: activation of the actor MLP.
    :param optimizer_class: optimizer of actor and critic.
    :param optimizer_kwargs: its keyword arguments.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        n_agents: int = 2,
        net_arch: list[int] | None = None,
        share_actor: bool = True,
        critic_hidden_dim: int = 128,
        attention_heads: int = 4,
        share_critic: bool = False,
        activation_fn: type[nn.Module] = nn.ReLU,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=isinstance(action_space, spaces.Box),
        )
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"MAAC: observation space {observation_space} is not a flat Box; MAAC needs one "
                             "observation vector per agent (joint_observation=False)")  # fmt: skip
        if n_agents < 2:
            raise ValueError(f"MAAC: n_agents={n_agents}, expected at least 2 (the critic attends to the others)")
        self.n_agents = n_agents
        self.net_arch = [64, 64] if net_arch is None else list(net_arch)
        self.share_actor = share_actor
        self.critic_hidden_dim = critic_hidden_dim
        self.attention_heads = attention_heads
        self.share_critic = share_critic
        self.activation_fn = activation_fn
        obs_dim = observation_space.shape[0]
        if isinstance(action_space, spaces.Discrete):
            action_dim = int(action_space.n)
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            action_dim = action_space.shape[0]
        else:
            raise ValueError(f"MAAC: action space {action_space} is neither Discrete nor a flat Box")

        trunk, features_dim = self._make_actor_trunk(obs_dim)
        self.actor = MultiAgentActor(trunk, features_dim, action_space, n_agents, share_actor)
        self.critic = AttentionCritic(n_agents, obs_dim, action_dim, critic_hidden_dim, attention_heads, share_critic)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_target.requires_grad_(False)
        # torch types Optimizer.__init__ as (params, defaults); every concrete optimizer takes lr
        # (SB3 builds its optimizers the same way, with the same ignore).
        self.actor.optimizer = self.optimizer_class(
            self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs  # type: ignore[call-arg]
        )
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs  # type: ignore[call-arg]
        )

    def _make_actor_trunk(self, obs_dim: int) -> tuple[nn.Module, int]:
        """The per-agent feature network of the actor, and its output size."""
        sizes = [obs_dim, *self.net_arch]
        return agentwise_mlp(self.n_agents, sizes, self.share_actor, self.activation_fn), sizes[-1]

    def encode_actions(self, actions: th.Tensor) -> th.Tensor:
        """Actions as the critic reads them: as they are if continuous; discrete action indices
        ``(..., n_agents)`` become one-hot vectors."""
        if isinstance(self.action_space, spaces.Discrete):
            return F.one_hot(actions.long(), int(self.action_space.n)).float()
        return actions

    def copies(self, obs: th.Tensor) -> th.Tensor:
        """Rows in slot order -> ``(n_copies, n_agents, obs_dim)``."""
        if len(obs) % self.n_agents:
            raise ValueError(f"MAAC: got {len(obs)} observations, expected whole env copies (a multiple of {self.n_agents})")
        return obs.view(-1, self.n_agents, *obs.shape[1:])

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        # The constructor accepts only a flat Box observation space, so SB3 hands over one tensor.
        assert isinstance(observation, th.Tensor), "MAAC observations are flat vectors"
        actions = self.actor.act(self.copies(observation), deterministic)
        return actions.reshape(len(observation), *actions.shape[2:])

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic)

    def set_training_mode(self, mode: bool) -> None:
        self.actor.train(mode)
        self.critic.train(mode)
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["normalize_images"]
        data.update(
            lr_schedule=self._dummy_schedule,  # a dummy: not needed to load the policy alone
            n_agents=self.n_agents,
            net_arch=self.net_arch,
            share_actor=self.share_actor,
            critic_hidden_dim=self.critic_hidden_dim,
            attention_heads=self.attention_heads,
            share_critic=self.share_critic,
            activation_fn=self.activation_fn,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data


class NCAMAACPolicy(MAACPolicy):
    """MAAC with a neural-cellular-automaton actor: each agent's features come from
    ``nca_iterations`` rounds of messages from its ``n_neighbours`` nearest agents
    (:class:`~sb3_ext.nca.core.NCACore`); the rest is :class:`MAACPolicy`."""

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        nca_iterations: int = 2,
        n_neighbours: int = 4,
        nca_hidden_dim: int = 64,
        position_indices: tuple[int, int] | None = (0, 2),
        **kwargs: Any,
    ) -> None:
        # Set before the parent constructor, which builds the actor trunk from them.
        self.nca_iterations = nca_iterations
        self.n_neighbours = n_neighbours
        self.nca_hidden_dim = nca_hidden_dim
        self.position_indices = position_indices
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _make_actor_trunk(self, obs_dim: int) -> tuple[nn.Module, int]:
        core = NCACore(
            obs_dim,
            hidden_dim=self.nca_hidden_dim,
            nca_iterations=self.nca_iterations,
            n_neighbours=self.n_neighbours,
            position_indices=self.position_indices,
        )
        return core, core.output_dim

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            nca_iterations=self.nca_iterations,
            n_neighbours=self.n_neighbours,
            nca_hidden_dim=self.nca_hidden_dim,
            position_indices=self.position_indices,
        )
        return data
