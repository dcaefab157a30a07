"""QuantileDQN.load(path, risk_measure=..., risk_alpha=...) takes effect, as SB3's load(**kwargs) promises."""

import pytest
import torch as th

from sb3_ext.quantile_dqn import QuantileDQN


def test_risk_settings_passed_to_load_take_effect(tmp_path):
    th.set_num_threads(1)
    QuantileDQN("MlpPolicy", "CartPole-v1", risk_measure="cvar", risk_alpha=0.25, seed=0).save(tmp_path / "cvar.zip")
    quantiles = th.arange(2 * 25 * 2, dtype=th.float32).view(2, 25, 2) ** 1.5

    kept = QuantileDQN.load(tmp_path / "cvar.zip")
    assert (kept.risk_measure, kept.risk_alpha) == ("cvar", 0.25)

    model = QuantileDQN.load(tmp_path / "cvar.zip", risk_measure="mean", risk_alpha=1.0)
    assert (model.risk_measure, model.risk_alpha) == ("mean", 1.0)
    for net in (model.policy.quantile_net, model.policy.quantile_net_target, model.quantile_net):
        assert (net.risk_measure, net.risk_alpha) == ("mean", 1.0)
        th.testing.assert_close(net.action_scores(quantiles), quantiles.mean(dim=1))
    # the greedy action follows the mean of the quantiles, as for a model built with "mean"
    observations = th.randn(16, 4)
    with th.no_grad():
        expected = model.quantile_net(observations).mean(dim=1).argmax(dim=1)
        assert th.equal(model.policy._predict(observations, deterministic=True), expected)
    model.save(tmp_path / "mean.zip")
    assert QuantileDQN.load(tmp_path / "mean.zip").risk_measure == "mean"

    with pytest.raises(ValueError, match="risk_alpha=2"):
        QuantileDQN.load(tmp_path / "cvar.zip", risk_alpha=2)
