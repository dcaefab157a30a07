"""Building blocks of MAAC's networks: per-agent linear layers and attention across agents.

Tensors are ``(batch, n_agents, features)``: one row per agent of an env copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch as th
from torch import nn
from torch.nn import functional as F
import itertools


class AgentwiseLinear(nn.Module):
    """A linear layer on ``(batch, n_agents, in_features)``: one weight per agent, or one for all.

    Per-agent weights are the paper's choice (each agent has its own encoder and Q head);
    ``shared=True`` gives homogeneous swarms one set for everybody.
    """

    def __init__(self, n_agents: int, in_features: int, out_features: int, shared: bool = False) -> None:
        super().__init__()
        copies = 1 if shared else n_agents
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(th.empty(copies, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(th.empty(copies, out_features).uniform_(-bound, bound))

    def forward(self, x: th.Tensor) -> th.Tensor:
        if len(self.weight) == 1:
            return F.linear(x, self.weight[0].T, self.bias[0])
        # One batched matrix product with the agents as the batch: (agents, rows, in) @ (agents, in, out).
        n_agents = x.shape[-2]
        rows = x.movedim(-2, 0).reshape(n_agents, -1, x.shape[-1])
        out = th.baddbmm(self.bias[:, None, :], rows, self.weight)
        return out.reshape(n_agents, *x.shape[:-2], -1).movedim(0, -2)


def agentwise_mlp(
    n_agents: int, sizes: list[int], shared: bool, activation_fn: type[nn.Module], activate_last: bool = True
) -> nn.Sequential:
    """``AgentwiseLinear`` layers of ``sizes`` (input first) with activations in between."""
    layers: list[nn.Module] = []
    for i, (size_in, size_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(AgentwiseLinear(n_agents, size_in, size_out, shared))
        if activate_last or i < len(sizes) - 2:
            layers.append(activation_fn())
    return nn.Sequential(*layers)


@dataclass
class Attention:
    """What the attention over the other agents produced, for the loss and the logs."""

    values: th.Tensor  #: ``(batch, n_agents, dim)``: for each agent, the attended values of the others
    weights: th.Tensor  #: ``(batch, heads, n_agents, n_agents)``; the diagonal (self) is 0
    logits: th.Tensor  #: same shape, before masking and softmax

    def entropy(self) -> th.Tensor:
        """Mean entropy of the attention distributions (over heads, agents and batch)."""
        return -th.special.xlogy(self.weights, self.weights).sum(dim=-1).mean()

    def logit_magnitude(self) -> th.Tensor:
        """Mean squared logit of the other agents: MAAC's regulariser keeps the softmax from saturating."""
        n_agents = self.logits.shape[-1]
        others = ~th.eye(n_agents, dtype=th.bool, device=self.logits.device)
        return self.logits[..., others].pow(2).mean()


class AgentAttention(nn.Module):
    """Multi-head attention of each agent over all *other* agents, with weights shared by all agents.

    Agent ``i`` forms a query from its own encoding, keys and values come from the others'
    encodings (Iqbal & Sha, 2019, eq. 3): ``x_i = sum_{j != i} softmax_j(q_i . k_j / sqrt(d)) v_j``.
    The sum over ``j`` makes ``x_i`` independent of the order of the other agents.

    :param dim: encoding size (divisible by ``n_heads``).
    :param n_heads: attention heads.
    """

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"MAAC: hidden size {dim} is not divisible by attention_heads={n_heads}")
        self.n_heads = n_heads
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim)

    def forward(self, query_from: th.Tensor, key_value_from: th.Tensor) -> Attention:
        batch, n_agents, dim = query_from.shape
        head_dim = dim // self.n_heads

        def heads(x: th.Tensor) -> th.Tensor:  # (batch, agents, dim) -> (batch, heads, agents, head_dim)
            return x.view(batch, n_agents, self.n_heads, head_dim).transpose(1, 2)

        queries, keys = heads(self.query(query_from)), heads(self.key(key_value_from))
        values = heads(F.leaky_relu(self.value(key_value_from)))
        logits = queries @ keys.transpose(-1, -2) / math.sqrt(head_dim)
        self_mask = th.eye(n_agents, dtype=th.bool, device=logits.device)
        weights = th.softmax(logits.masked_fill(self_mask, float("-inf")), dim=-1)
        attended = (weights @ values).transpose(1, 2).reshape(batch, n_agents, dim)
        return Attention(values=attended, weights=weights, logits=logits)
