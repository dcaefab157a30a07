"""The neural-cellular-automaton update shared by every NCA network in the package.

Each agent is a cell with a hidden state. The cell starts from an encoding of its own
observation, then applies the same local rule ``nca_iterations`` times:

    m_ij = message([h_j, p_j - p_i])                for the K nearest neighbours j of i
    h_i <- h_i + update([h_i, mean_j m_ij])

``p`` is the agent's position, read from its observation (``position_indices``); without
positions every other agent is a neighbour. The mean makes the rule invariant to the order of
the neighbours, and iterating it lets information travel ``nca_iterations`` hops through the
swarm. The rule's weights are shared by all agents and all rounds, as in a cellular automaton.
"""

from __future__ import annotations

import torch as th
from torch import nn


class NCACore(nn.Module):
    """Hidden states of all agents of a group after ``nca_iterations`` rounds of the local rule.

    :param obs_dim: size of one agent's observation.
    :param hidden_dim: size of the hidden state (and of the output per agent).
    :param nca_iterations: rounds of message passing.
    :param n_neighbours: K, how many nearest agents each agent listens to.
    :param position_indices: ``(start, stop)`` of the agent's 2-D position in its observation;
        ``None`` makes every other agent a neighbour.
    """

    def __init__(
        self,
        obs_dim: int,
        hidden_dim: int = 64,
        nca_iterations: int = 2,
        n_neighbours: int = 4,
        position_indices: tuple[int, int] | None = (0, 2),
    ) -> None:
        super().__init__()
        if nca_iterations < 0 or n_neighbours < 1:
            raise ValueError(
                f"NCA: nca_iterations={nca_iterations}, n_neighbours={n_neighbours}; expected >= 0 and >= 1"
            )
        if position_indices is not None and not 0 <= position_indices[0] < position_indices[1] <= obs_dim:
            raise ValueError(f"NCA: position_indices={position_indices} do not fit an observation of size {obs_dim}")
        self.nca_iterations = nca_iterations
        self.n_neighbours = n_neighbours
        self.position_indices = position_indices
        edge_dim = 0 if position_indices is None else position_indices[1] - position_indices[0]
        self.encoder = nn.Sequential(nn.Linear(obs_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, hidden_dim), nn.Tanh())
        self.message = nn.Sequential(nn.Linear(hidden_dim + edge_dim, hidden_dim), nn.Tanh())
        self.update = nn.Sequential(nn.Linear(2 * hidden_dim, hidden_dim), nn.Tanh())
        self.output_dim = hidden_dim

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """``obs``: ``(batch, n_agents, obs_dim)`` -> hidden states ``(batch, n_agents, hidden_dim)``."""
        batch, n_agents, _ = obs.shape
        hidden = self.encoder(obs)
        if n_agents == 1 or self.nca_iterations == 0:
            return hidden
        if self.position_indices is None:
            # Without positions, every agent listens to all the others.
            not_self = ~th.eye(n_agents, dtype=th.bool, device=obs.device)
            others = th.arange(n_agents, device=obs.device).expand(n_agents, n_agents)[not_self]
            neighbours = others.view(1, n_agents, n_agents - 1).expand(batch, -1, -1)
            edges = None
        else:
            start, stop = self.position_indices
            position = obs[..., start:stop]
            distance = th.cdist(position, position)
            distance = distance + th.diag(th.full((n_agents,), float("inf"), device=obs.device))
            k = min(self.n_neighbours, n_agents - 1)
            neighbours = distance.topk(k, dim=2, largest=False).indices  # (batch, n_agents, k)
            edges = _gather(position, neighbours) - position[:, :, None, :]
        for _ in range(self.nca_iterations):
            incoming = _gather(hidden, neighbours)
            if edges is not None:
                incoming = th.cat([incoming, edges], dim=-1)
            aggregate = self.message(incoming).mean(dim=2)
            hidden = hidden + self.update(th.cat([hidden, aggregate], dim=-1))
        return hidden


def _gather(values: th.Tensor, index: th.Tensor) -> th.Tensor:
    """``values`` ``(batch, n, d)`` at ``index`` ``(batch, n, k)`` -> ``(batch, n, k, d)``."""
    batch, n, k = index.shape
    flat = index.reshape(batch, n * k, 1).expand(-1, -1, values.shape[-1])
    return values.gather(1, flat).view(batch, n, k, values.shape[-1])
