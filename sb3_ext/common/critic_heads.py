"""Several critic heads on one feature vector, shared by TwinDQN and QuantileDQN."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
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
