"""Phase 2's stacked networks: same values and gradients as separate MLPs, per-network clipping,
old zips' weights and optimizer moments, and the buffer's cached state ids."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.save_util import load_from_zip_file
from torch import nn

import sb3_ext  # noqa: F401
from sb3_ext.phase2 import Phase2
from sb3_ext.phase2.denormals import flush_denormals, flushing_denormals
from sb3_ext.phase2.policies import StackedMLPs

NAMES, OUTS = ["q_r", "v_h_e", "x_h"], [5, 6, 1]
FAST = dict(learning_starts=32, batch_size=32, warmup_v_h_e_steps=150, warmup_x_h_steps=150,
            warmup_q_r_steps=200, beta_r_rampup_steps=300, policy_kwargs=dict(net_arch=[32, 32]))


def separate_mlps(net_arch: list[int]) -> dict[str, nn.Sequential]:
    nets = {}
    for name, n_out in zip(NAMES, OUTS, strict=True):
        layers: list[nn.Module] = []
        for n_in, width in zip([7, *net_arch], net_arch, strict=False):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
        layers.append(nn.Linear(([7, *net_arch])[-1], n_out))
        nets[name] = nn.Sequential(*layers)
    return nets


@pytest.mark.parametrize("net_arch", [[16, 8], []])
def test_stacked_networks_compute_what_separate_networks_compute(net_arch):
    th.manual_seed(0)
    separate = separate_mlps(net_arch)
    stacked = StackedMLPs(NAMES, 7, OUTS, net_arch, dropout=0.0)
    # The separate layout's state dict loads (how zips saved before the stacking load).
    stacked.load_state_dict({f"{n}.{k}": v for n, net in separate.items() for k, v in net.state_dict().items()})
    x = th.randn(11, 7)
    together = stacked(x)
    assert together.shape == (3, 11, max(OUTS))
    for i, (name, n_out) in enumerate(zip(NAMES, OUTS, strict=True)):
        expected = separate[name](x)
        th.testing.assert_close(together[i, :, :n_out], expected)
        th.testing.assert_close(stacked.single(name, x), expected)
    # Gradients: each network's slice gets its own network's gradient, clipped per network.
    targets = [th.randn(11, n) * 10 for n in OUTS]
    loss = sum(((together[i, :, :n] - t) ** 2).sum() for i, (n, t) in enumerate(zip(OUTS, targets, strict=True)))
    loss.backward()
    stacked.clip_grad_norms_(1.0)
    for name, t in zip(NAMES, targets, strict=True):
        ((separate[name](x) - t) ** 2).sum().backward()
        th.nn.utils.clip_grad_norm_(separate[name].parameters(), 1.0)
    reference = StackedMLPs(NAMES, 7, OUTS, net_arch, dropout=0.0)
    grads = {f"{n}.{k}": p.grad for n, net in separate.items() for k, p in net.named_parameters()}
    reference.load_state_dict(grads)  # the separate gradients, in the stacked layout
    for param, expected in zip(stacked.params, reference.params, strict=True):
        th.testing.assert_close(param.grad, expected.data)


def test_a_subset_of_networks_computes_their_outputs_and_leaves_the_others_gradients_zero():
    th.manual_seed(0)
    stacked = StackedMLPs(NAMES, 7, OUTS, [16, 8], dropout=0.0)
    x = th.randn(5, 7)
    subset = stacked(x, [0, 2])
    th.testing.assert_close(subset, stacked(x)[[0, 2]])
    subset.sum().backward()
    first_weight, first_bias, *rest = (p.grad for p in stacked.params)
    assert first_weight[16:32].abs().sum() == 0 and first_bias[16:32].abs().sum() == 0
    assert first_weight[:16].abs().sum() > 0 and first_weight[32:].abs().sum() > 0
    for grad in rest:
        assert grad[1].abs().sum() == 0 and grad[0].abs().sum() > 0 and grad[2].abs().sum() > 0


def test_clipping_scales_only_the_networks_above_the_norm():
    th.manual_seed(0)
    stacked = StackedMLPs(NAMES, 7, OUTS, [16], dropout=0.0)
    out = stacked(th.randn(9, 7))
    (out[0].sum() * 100.0 + out[1].sum() * 1e-3).backward()  # a large gradient for q_r, a tiny one for v_h_e
    before = [p.grad.clone() for p in stacked.params]
    stacked.clip_grad_norms_(1e6)  # nothing to clip: the gradients stay as they were
    for p, g in zip(stacked.params, before, strict=True):
        assert th.equal(p.grad, g)
    stacked.clip_grad_norms_(1.0)
    norms = th.stack([p.grad.reshape(3, -1).square().sum(1) for p in stacked.params]).sum(0).sqrt()
    assert abs(float(norms[0]) - 1.0) < 1e-4  # q_r clipped to norm 1
    for p, g in zip(stacked.params, before, strict=True):
        th.testing.assert_close(p.grad.reshape(3, -1)[1], g.reshape(3, -1)[1], rtol=0.0, atol=0.0)  # v_h_e kept


def test_single_network_forward_does_not_touch_other_networks():
    stacked = StackedMLPs(NAMES, 7, OUTS, [16], dropout=0.0)
    stacked.single("v_h_e", th.randn(4, 7)).sum().backward()
    first_weight_grad = stacked.params[0].grad
    assert first_weight_grad[:16].abs().sum() == 0 and first_weight_grad[32:].abs().sum() == 0
    assert first_weight_grad[16:32].abs().sum() > 0


def test_an_old_zip_keeps_its_optimizer_moments():
    """tests/data/phase2_line_v1.zip holds one network per module and Adam's moments per network:
    they load into the stacked layout, each in its network's slice."""
    data = Path(__file__).parent / "data"
    loaded = Phase2.load(data / "phase2_line_v1.zip")
    _, saved, _ = load_from_zip_file(data / "phase2_line_v1.zip")
    old = saved["policy.optimizer"]["state"]
    new = loaded.policy.optimizer.state_dict()["state"]
    width = 16  # net_arch [16]; the optimizer held q_r, v_h_e, x_h in turn, weight and bias per layer
    for i, n_out in enumerate((5, 4, 1)):
        for key in ("exp_avg", "exp_avg_sq"):
            th.testing.assert_close(new[0][key][i * width:(i + 1) * width], old[4 * i][key])
            th.testing.assert_close(new[1][key][i * width:(i + 1) * width], old[4 * i + 1][key])
            th.testing.assert_close(new[2][key][i, :, :n_out], old[4 * i + 2][key].T)
            th.testing.assert_close(new[3][key][i, 0, :n_out], old[4 * i + 3][key])
            assert new[2][key][i, :, n_out:].abs().sum() == 0  # padding of the narrower outputs
    assert float(new[0]["step"]) == max(float(e["step"]) for e in old.values())


def test_replay_buffer_keeps_each_observations_state_id_until_the_slot_is_overwritten():
    env = gym.make("AssistGrid-v0", max_steps=3)
    model = Phase2("MlpPolicy", env, seed=0, buffer_size=50, **FAST)
    model.learn(120)  # the buffer wraps
    buffer, cache = model.replay_buffer, model.successor_cache
    filled = buffer.state_ids[:, 0] >= 0
    assert filled.any()
    np.testing.assert_array_equal(buffer.state_ids[filled, 0], cache.ids(buffer.observations[filled, 0]))
    ids = model._sample_state_ids(200)
    assert (ids >= 0).all()
    pos = buffer.pos
    buffer.add(buffer.observations[pos], buffer.next_observations[pos], buffer.actions[pos], buffer.rewards[pos],
               buffer.dones[pos], [{"goals": tuple(buffer.goals[pos, 0])}])
    assert buffer.state_ids[pos, 0] == -1


def test_a_network_is_untouched_by_adam_until_it_joins():
    env = gym.make("AssistGrid-v0", max_steps=3)
    model = Phase2("MlpPolicy", env, seed=0, **FAST)
    initial = [p.detach().clone() for p in model.policy.nets.params]
    moments = {}

    def record(_locals, _globals):
        state = model.policy.optimizer.state
        if model.num_timesteps in (299, 320) and state:
            # Q_r is network 0: rows 0-31 of the first layer, index 0 of the stacked layers.
            first = state[model.policy.nets.params[0]]["exp_avg"][:32]
            out = state[model.policy.nets.params[-2]]["exp_avg"][0]
            moments[model.num_timesteps] = float(first.abs().sum() + out.abs().sum())
        return True

    model.learn(299, callback=record)
    # Before Q_r joins (env step 300) only weight decay has moved it: lr x 1e-5 per update.
    for before, after in zip(initial, model.policy.nets.params, strict=True):
        th.testing.assert_close(after.detach()[:32] if after.dim() == 2 else after.detach()[0],
                                before[:32] if before.dim() == 2 else before[0], rtol=1e-5, atol=0.0)
    model.learn(21, callback=record, reset_num_timesteps=False)
    assert moments[299] == 0.0 and moments[320] > 0.0


def test_successor_expansion_draws_uniformly_among_non_terminal_successors():
    env = gym.make("AssistGrid-v0", max_steps=3)
    model = Phase2("MlpPolicy", env, seed=0, **FAST)
    model.learn(100)
    cache = model.successor_cache
    state = next(i for i in range(len(cache)) if (cache._tables[i].terminal == 0.0).sum() > 1)
    table = cache._tables[state]
    expected = set(cache.ids(table.obs[table.terminal == 0.0]).tolist())
    draws = cache.sample_successors(np.full(3000, state))
    assert set(draws.tolist()) == expected
    counts = np.bincount(draws)[sorted(expected)]
    assert np.all(np.abs(counts - 3000 / len(expected)) < 5 * np.sqrt(3000 / len(expected)))
    # A state whose successors are all terminal (one step before the horizon) contributes nothing.
    last = next(i for i in range(len(cache)) if cache._tables[i].terminal.all())
    assert len(cache.sample_successors(np.array([last, state, last]))) == 1


def test_denormals_are_flushed_inside_the_update_and_the_callers_mode_is_restored():
    tiny = th.tensor([1e-39])  # a float32 denormal
    assert not flushing_denormals() and float(tiny * 1.0) > 0.0
    with flush_denormals():
        assert flushing_denormals() and float(tiny * 1.0) == 0.0
    assert not flushing_denormals()
    th.set_flush_denormal(True)  # a caller that flushes already keeps flushing
    try:
        with flush_denormals():
            pass
        assert flushing_denormals()
    finally:
        th.set_flush_denormal(False)
    model = Phase2("MlpPolicy", gym.make("AssistGrid-v0", max_steps=3), seed=0, **FAST)
    model.learn(60)  # updates from step 32 on
    assert model._n_updates > 0 and not flushing_denormals()
