"""``PowerLawPolicy``: the Phase 2 networks and the robot's power-law softmax policy."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from sb3_ext.phase2.power import power_law_log_probs

# Each network's output transform onto the range its quantity lives in.
PROBABILITY_NETWORKS = ("v_h_e", "x_h")
_OUTPUTS = {
    "q_r": lambda z: -F.softplus(z),  # Q_r < 0
    "v_r": lambda z: -F.softplus(z),  # V_r < 0
    "v_h_e": th.sigmoid,  # a probability
    "x_h": th.sigmoid,  # E_g[V^zeta] in (0, 1)
    "u_r": lambda z: 1.0 + th.exp(z),  # the network predicts log(y - 1), y = E_h[X_h^-xi] >= 1
}


def _mlp(n_in: int, n_out: int, net_arch: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in net_arch:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class PowerLawPolicy(BasePolicy):
    """Networks Q_r, V_h^e, X_h (and optionally U_r, V_r) with target copies; acts by power law.

    The robot's policy is pi_r(a) proportional to (-Q_r(s, a))^(-beta_r). ``beta_r`` is a
    buffer so that it is saved with the weights: the algorithm moves it along its warm-up ramp.
    One optimizer holds every main network; the networks share no parameters, so a summed loss
    trains each on its own loss, and a network left out of the loss (not yet in its warm-up
    stage) gets no gradient and is skipped by the optimizer, weight decay included.

    :param n_goal_pairs: outputs of V_h^e, one per (human, goal) pair
    :param n_humans: outputs of X_h
    :param net_arch: hidden layer widths of every network
    :param dropout: dropout rate after each hidden layer (main networks only; targets run in eval mode)
    :param u_r_use_network: build a U_r network
    :param v_r_use_network: build a V_r network
    """

    action_space: spaces.Discrete
    beta_r: th.Tensor  # a registered buffer

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_goal_pairs: int = 1,
        n_humans: int = 1,
        net_arch: list[int] | None = None,
        dropout: float = 0.0,
        u_r_use_network: bool = False,
        v_r_use_network: bool = False,
        optimizer_class: type[th.optim.Optimizer] = th.optim.AdamW,
        optimizer_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = False,
    ):
        if optimizer_kwargs is None:
            # fused: one kernel for every parameter's AdamW update, several times faster on CPU.
            optimizer_kwargs = {"weight_decay": 1e-5, "fused": True}
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
        )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: {dropout!r}, expected a number in [0, 1)")
        self.net_arch = [128, 128] if net_arch is None else list(net_arch)
        self.dropout = dropout
        self.n_goal_pairs = n_goal_pairs
        self.n_humans = n_humans
        self.u_r_use_network = u_r_use_network
        self.v_r_use_network = v_r_use_network
        self.register_buffer("beta_r", th.tensor(0.0))
        self._build(lr_schedule)

    @property
    def network_names(self) -> list[str]:
        names = ["q_r", "v_h_e", "x_h"]
        return names + [n for n, used in (("u_r", self.u_r_use_network), ("v_r", self.v_r_use_network)) if used]

    def _build(self, lr_schedule: Schedule) -> None:
        n_in = int(spaces.flatdim(self.observation_space))
        n_out = {"q_r": int(self.action_space.n), "v_h_e": self.n_goal_pairs, "x_h": self.n_humans, "u_r": 1, "v_r": 1}
        self.nets = nn.ModuleDict({n: _mlp(n_in, n_out[n], self.net_arch, self.dropout) for n in self.network_names})
        self.target_nets = nn.ModuleDict({n: _mlp(n_in, n_out[n], self.net_arch, self.dropout) for n in self.network_names})
        self.target_nets.load_state_dict(self.nets.state_dict())
        self.target_nets.requires_grad_(False)
        self.target_nets.train(False)
        # As in SB3's own policies: the base Optimizer's signature has no lr, every concrete optimizer does.
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.nets.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def raw(self, name: str, obs: th.Tensor, target: bool = False) -> th.Tensor:
        """The named network's output before its range transform (any leading batch shape)."""
        net = (self.target_nets if target else self.nets)[name]
        out = net(obs.reshape(-1, obs.shape[-1]).float())
        return out.reshape(*obs.shape[:-1], out.shape[-1])

    def value(self, name: str, obs: th.Tensor, target: bool = False) -> th.Tensor:
        """The named quantity at ``obs``, from the main or target network."""
        return _OUTPUTS[name](self.raw(name, obs, target))

    def update_targets(self) -> None:
        """Full copy of every main network into its target (DQN style, not Polyak)."""
        self.target_nets.load_state_dict(self.nets.state_dict())

    def log_probs(self, q_r: th.Tensor) -> th.Tensor:
        return power_law_log_probs(q_r, self.beta_r)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        q_r = self.value("q_r", observation)  # type: ignore[arg-type]
        if deterministic:
            return q_r.argmax(dim=-1)
        return th.distributions.Categorical(logits=self.log_probs(q_r)).sample()

    def set_training_mode(self, mode: bool) -> None:
        # Only the main networks switch: targets always run without dropout. SB3 calls this on
        # every predict and train, and walking the modules costs more than a small forward
        # pass, so it is skipped when there is no dropout, the only layer the mode changes.
        if mode != self.training and self.dropout > 0.0:
            self.nets.train(mode)
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            n_goal_pairs=self.n_goal_pairs,
            n_humans=self.n_humans,
            net_arch=self.net_arch,
            dropout=self.dropout,
            u_r_use_network=self.u_r_use_network,
            v_r_use_network=self.v_r_use_network,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data


MlpPolicy = PowerLawPolicy
