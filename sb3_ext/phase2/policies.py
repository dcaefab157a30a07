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


class StackedMLPs(nn.Module):
    """Several MLPs with the same input and hidden widths, computed as one.

    The networks' first layers sit side by side in one wide linear layer; every later layer holds
    the networks' weights stacked on a leading axis (``(networks, in, out)``) and runs as one batched
    matrix product. A training step then costs a handful of large operations instead of a few per
    network, and their gradients are per-network slices of a few tensors (torch has no batched
    layer of independent networks that would do this). Output layers narrower than the widest are
    zero-padded; the padding is sliced off and never receives gradient. The networks still share
    no parameters: each slice is touched only by its own network's loss.

    :param names: the networks, in their slice order
    :param n_in: input width
    :param n_outs: each network's output width
    :param net_arch: hidden layer widths (every network)
    :param dropout: dropout rate after each hidden layer (in training mode)
    """

    def __init__(self, names: list[str], n_in: int, n_outs: list[int], net_arch: list[int], dropout: float):
        super().__init__()
        self.names, self.n_outs, self.dropout = list(names), list(n_outs), dropout
        self.index = {name: i for i, name in enumerate(self.names)}
        self.n_nets = len(self.names)
        widths = [*net_arch, max(self.n_outs)]
        self.first_width = widths[0]
        # Drawn network by network, layer by layer, as separate nn.Linear layers would be.
        layers = [list(zip([n_in, *net_arch], [*net_arch, n_out], strict=True)) for n_out in self.n_outs]
        self.params = nn.ParameterList(stack_layers([[_linear_init(*shape) for shape in net] for net in layers], widths))

    def forward(self, obs: th.Tensor, nets: list[int] | None = None) -> th.Tensor:
        """The raw outputs at ``obs`` (batch, in) of the networks ``nets`` (indices; None: all):
        (networks, batch, widest output).

        A subset runs on slices of the stacked weights, so the networks left out cost nothing
        and their gradient slices stay zero (as an unused output would leave them).
        """
        first_weight, first_bias, *rest = self.layer_params()
        n_nets = self.n_nets
        if nets is not None and len(nets) < n_nets:
            index = th.as_tensor(nets)
            rows = (index[:, None] * self.first_width + th.arange(self.first_width)).reshape(-1)
            first_weight, first_bias = first_weight[rows], first_bias[rows]
            rest = [p[index] for p in rest]
            n_nets = len(nets)
        h = F.linear(obs, first_weight, first_bias)  # (batch, networks * first width)
        h = h.view(len(obs), n_nets, self.first_width).transpose(0, 1)
        for weight, bias in zip(rest[0::2], rest[1::2], strict=True):
            h = self._hidden(h)
            h = th.baddbmm(bias, h, weight)
        return h

    def layer_params(self) -> list[th.Tensor]:
        """The stacked parameters in order (first weight, first bias, then each layer's weight and bias).

        Read through ``parameters``: iterating the ParameterList itself costs ~20 us, a tenth of a
        forward pass on a few states (the robot's every move).
        """
        return list(self.params.parameters(recurse=False))

    def single(self, name: str, obs: th.Tensor) -> th.Tensor:
        """The raw output of one network at ``obs`` (batch, in): (batch, its output width)."""
        i = self.index[name]
        first_weight, first_bias, *rest = self.layer_params()
        rows = slice(i * self.first_width, (i + 1) * self.first_width)
        h = F.linear(obs, first_weight[rows], first_bias[rows])
        for weight, bias in zip(rest[0::2], rest[1::2], strict=True):
            h = th.addmm(bias[i], self._hidden(h), weight[i])
        return h[:, : self.n_outs[i]]

    def _hidden(self, h: th.Tensor) -> th.Tensor:
        h = F.relu(h)
        return F.dropout(h, self.dropout, self.training) if self.dropout > 0.0 else h

    def clip_grad_norms_(self, max_norm: float) -> None:
        """Scale each network's gradient to L2 norm <= ``max_norm`` (``clip_grad_norm_`` per network).

        ``torch.nn.utils.clip_grad_norm_`` clips whole tensors; here a network is a slice of each.
        """
        grads = [p.grad for p in self.layer_params()]
        if any(g is None for g in grads):
            return
        per_net = [g.view(self.n_nets, -1) for g in grads if g is not None]
        norms = th.cat(per_net, dim=1).square().sum(dim=1).sqrt()
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)[:, None]
        if bool((scale < 1.0).any()):  # most steps clip no network: skip multiplying by ones
            for g in per_net:
                g.mul_(scale)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Zips saved before the networks were stacked hold one nn.Sequential per network
        # ("<name>.<layer>.weight"); stack those into this layout, unchanged in value.
        if f"{prefix}{self.names[0]}.0.weight" in state_dict:
            separate = [_pop_linear_layers(state_dict, f"{prefix}{name}.") for name in self.names]
            widths = [*[w.shape[0] for w, _ in separate[0][:-1]], max(self.n_outs)]
            for k, tensor in enumerate(stack_layers(separate, widths)):
                state_dict[f"{prefix}params.{k}"] = tensor
        super()._load_from_state_dict(state_dict, prefix, *args)


def stack_optimizer_state(module: StackedMLPs, separate: dict[str, Any], optim_state: dict[str, Any]) -> dict[str, Any]:
    """An optimizer state dict saved for separate networks (``separate``: their state dict,
    "<name>.<layer>.weight" keys; the optimizer held each network's parameters in turn) as one
    for ``module``'s stacked parameters: each moment stacked as the weights are (zeros for a
    network the optimizer had not stepped yet), the step count the largest of the networks'."""
    layers = [_pop_linear_layers(dict(separate), f"{name}.") for name in module.names]
    shapes = [t for net in layers for layer in net for t in layer]  # the optimizer's parameter order
    old = optim_state["state"]
    widths = [*[weight.shape[0] for weight, _ in layers[0][:-1]], max(module.n_outs)]
    moments = sorted({key for entry in old.values() for key in entry if key != "step"})
    state: dict[int, dict[str, Any]] = {}
    if old:
        stacked = {}
        for key in moments:
            tensors = iter([old[i][key] if key in old.get(i, {}) else th.zeros_like(t) for i, t in enumerate(shapes)])
            stacked[key] = stack_layers([[(next(tensors), next(tensors)) for _ in net] for net in layers], widths)
        step = max((entry["step"] for entry in old.values()), key=float)
        state = {k: {"step": th.as_tensor(step).clone(), **{key: stacked[key][k] for key in moments}}
                 for k in range(len(module.params))}
    groups = [{**group, "params": list(range(len(module.params)))} for group in optim_state["param_groups"]]
    return {"state": state, "param_groups": groups}


def stack_layers(networks: list[list[tuple[th.Tensor, th.Tensor]]], widths: list[int]) -> list[th.Tensor]:
    """Per network its linear layers' (weight (out, in), bias (out,)), as :class:`StackedMLPs`'
    parameters in order: the first layer side by side, then each layer stacked (outputs padded with
    zeros to ``widths[-1]``). Also used on optimizer moments, which have the weights' shapes."""
    first = networks[0][0][0]
    out = [th.cat([layers[0][0] for layers in networks]), th.cat([layers[0][1] for layers in networks])]
    if len(networks[0]) == 1:  # no hidden layer: the first layer is the output layer, padded
        out = [th.cat([F.pad(layers[0][0], (0, 0, 0, widths[-1] - len(layers[0][0]))) for layers in networks]),
               th.cat([F.pad(layers[0][1], (0, widths[-1] - len(layers[0][1]))) for layers in networks])]
    for layer in range(1, len(networks[0])):
        weights, biases = [], []
        for layers in networks:
            weight, bias = layers[layer]
            pad = widths[layer] - len(bias)
            weights.append(F.pad(weight, (0, 0, 0, pad)).T)
            biases.append(F.pad(bias, (0, pad))[None])
        out += [th.stack(weights), th.stack(biases)]
    return [t.to(first.dtype).contiguous() for t in out]


def _linear_init(n_in: int, n_out: int) -> tuple[th.Tensor, th.Tensor]:
    """Weight and bias drawn as ``nn.Linear`` draws them (uniform within 1/sqrt(fan in))."""
    layer = nn.Linear(n_in, n_out)
    return layer.weight.detach(), layer.bias.detach()


def _pop_linear_layers(state_dict: dict[str, Any], prefix: str) -> list[tuple[th.Tensor, th.Tensor]]:
    """Remove and return one nn.Sequential's linear layers (weight, bias), in layer order."""
    indices = sorted(int(key[len(prefix):].split(".")[0]) for key in state_dict
                     if key.startswith(prefix) and key.endswith(".weight"))
    return [(state_dict.pop(f"{prefix}{i}.weight"), state_dict.pop(f"{prefix}{i}.bias")) for i in indices]


class PowerLawPolicy(BasePolicy):
    """Networks Q_r, V_h^e, X_h (and optionally U_r, V_r) with target copies; acts by power law.

    The robot's policy is pi_r(a) proportional to (-Q_r(s, a))^(-beta_r). ``beta_r`` is a
    buffer so that it is saved with the weights: the algorithm moves it along its warm-up ramp.
    The networks are computed together (:class:`StackedMLPs`) and one optimizer holds them; they
    share no parameters, so a summed loss trains each on its own loss. A network left out of the
    loss (not yet in its warm-up stage) gets a zero gradient slice: its Adam moments stay zero and
    its weights move only by weight decay (lr x 1e-5 relative per step). When it joins, its moments
    start from zero but Adam's step count is that of the stacked tensors, so its first updates are
    not shrunk by bias correction as a fresh optimizer's would be (on the rock world this trained
    Q_r more accurately than restarting every network's moments at the join).

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
        names = self.network_names
        self.nets = StackedMLPs(names, n_in, [n_out[n] for n in names], self.net_arch, self.dropout)
        self.target_nets = StackedMLPs(names, n_in, [n_out[n] for n in names], self.net_arch, self.dropout)
        self.target_nets.load_state_dict(self.nets.state_dict())
        self.target_nets.requires_grad_(False)
        self.target_nets.train(False)
        # As in SB3's own policies: the base Optimizer's signature has no lr, every concrete optimizer does.
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.nets.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def raw(self, name: str, obs: th.Tensor, target: bool = False) -> th.Tensor:
        """The named network's output before its range transform (any leading batch shape)."""
        out = (self.target_nets if target else self.nets).single(name, obs.reshape(-1, obs.shape[-1]).float())
        return out.reshape(*obs.shape[:-1], out.shape[-1])

    def raw_all(self, obs: th.Tensor, names: list[str] | None = None, target: bool = False) -> dict[str, th.Tensor]:
        """The outputs before their range transform at ``obs`` (batch, features) of the main (or
        target) networks ``names`` (None: all), in one pass."""
        names = self.nets.names if names is None else [n for n in self.nets.names if n in names]
        out = (self.target_nets if target else self.nets)(obs.float(), [self.nets.index[n] for n in names])
        return {name: out[i, :, : self.nets.n_outs[self.nets.index[name]]] for i, name in enumerate(names)}

    def value(self, name: str, obs: th.Tensor, target: bool = False) -> th.Tensor:
        """The named quantity at ``obs``, from the main or target network."""
        return _OUTPUTS[name](self.raw(name, obs, target))

    def output(self, name: str, raw: th.Tensor) -> th.Tensor:
        """The named quantity from its network's raw output."""
        return _OUTPUTS[name](raw)

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
        # Sampled from the probabilities directly: a Categorical's argument checks cost more than the draw.
        probs = th.exp(self.log_probs(q_r))
        return th.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(probs.shape[:-1])

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
