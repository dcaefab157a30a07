"""``MultiTeamPolicy``: one SB3 actor-critic per group of agents, behind one policy object.

Rows of an agent-slot VecEnv are ``copy * n_agents + agent``; the policy sends each row to the
actor-critic of that agent's group (its team, by default) and puts the answers back in row
order. SB3's ``predict``, ``save`` and ``load`` therefore work on the whole multi-agent model.
"""

from __future__ import annotations

from typing import Any, cast
from collections.abc import Callable, Sequence

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule


class MultiTeamPolicy(BasePolicy):
    """Route every agent to the actor-critic of its group.

    :param observation_space: one agent's observation space.
    :param action_space: one agent's action space.
    :param lr_schedule: learning-rate schedule of every group's optimizer.
    :param agent_groups: group index of each agent of one env copy (``n_agents`` entries).
    :param group_policy_class: the actor-critic class of each group (``ActorCriticPolicy``,
        ``NCAPolicy``, ...).
    :param group_policy_kwargs: keyword arguments of every group's policy.
    """

    _group_of_agent: th.Tensor  # a buffer (registered in __init__): group index of each agent

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        agent_groups: Sequence[int] = (0,),
        group_policy_class: type[ActorCriticPolicy] = ActorCriticPolicy,
        group_policy_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
    ) -> None:
        if use_sde:
            raise ValueError("SharedActor: use_sde=True is not supported (one noise matrix per group would be needed)")
        groups = list(agent_groups)
        if sorted(set(groups)) != list(range(max(groups) + 1)):
            raise ValueError(f"SharedActor: agent_groups={groups} must number groups 0..G-1 without gaps")
        self.agent_groups = tuple(groups)
        self.group_policy_class = group_policy_class
        self.group_policy_kwargs = dict(group_policy_kwargs or {})
        members = [group_policy_class(observation_space, action_space, lr_schedule, **self.group_policy_kwargs)
                   for _ in range(max(groups) + 1)]  # fmt: skip
        super().__init__(observation_space, action_space, squash_output=members[0].squash_output)
        self.groups = th.nn.ModuleList(members)
        self.register_buffer("_group_of_agent", th.as_tensor(groups, dtype=th.long), persistent=False)

    @property
    def n_agents(self) -> int:
        return len(self.agent_groups)

    @property
    def group_policies(self) -> list[ActorCriticPolicy]:
        """Each group's actor-critic, in group order."""
        # nn.ModuleList is not generic: torch types its items as Module; __init__ fills it with these.
        return cast(list[ActorCriticPolicy], list(self.groups))

    def agent_index(self, n_rows: int) -> th.Tensor:
        """Agent of each row of a batch of whole env copies."""
        if n_rows % self.n_agents:
            raise ValueError(
                f"SharedActor: got {n_rows} observations, expected whole env copies (a multiple of {self.n_agents})"
            )
        return th.arange(n_rows, device=self._group_of_agent.device) % self.n_agents

    def _route(
        self, obs: th.Tensor, agents: th.Tensor | None, call: Callable[[ActorCriticPolicy, th.Tensor], tuple]
    ) -> list[th.Tensor]:
        """Apply ``call`` to each group's rows; return its outputs in row order."""
        if agents is None:
            agents = self.agent_index(len(obs))
        group_of_row = self._group_of_agent[agents]
        outputs: list[th.Tensor] = []
        for group, policy in enumerate(self.group_policies):
            rows = (group_of_row == group).nonzero(as_tuple=True)[0]
            if len(rows) == 0:
                continue
            answers = call(policy, obs[rows])
            if not outputs:
                outputs = [a.new_empty((len(obs), *a.shape[1:])) for a in answers]
            for output, answer in zip(outputs, answers, strict=False):
                output[rows] = answer
        return outputs

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        actions, values, log_probs = self._route(obs, None, lambda p, o: p(o, deterministic=deterministic))
        return actions, values, log_probs

    def predict_values(self, obs: th.Tensor, agents: th.Tensor | None = None) -> th.Tensor:
        """Values of ``obs``; ``agents`` gives each row's agent when the rows are not whole copies."""
        return self._route(obs, agents, lambda p, o: (p.predict_values(o),))[0]

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        # Agent slots observe a Box (AgentSlotsVecEnv refuses Dict spaces): SB3 hands over one tensor.
        assert isinstance(observation, th.Tensor), "SharedActor observations are arrays"
        return self._route(observation, None, lambda p, o: (p._predict(o, deterministic),))[0]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["normalize_images"]  # each group's policy has its own setting
        data.update(
            agent_groups=self.agent_groups,
            group_policy_class=self.group_policy_class,
            group_policy_kwargs=self.group_policy_kwargs,
            lr_schedule=self._dummy_schedule,  # a dummy: not needed to load the policy alone
        )
        return data
