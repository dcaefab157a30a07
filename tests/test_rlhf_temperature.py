"""RLHFEntropyTemperature: feedback that disagrees with SAC's critic raises the entropy target, agreement lowers it."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from sb3_contrib import TQC
from stable_baselines3 import SAC, TD3

from sb3_ext.callbacks import RLHFEntropyTemperature
from sb3_ext.rlhf import ScriptedFeedback

th.set_num_threads(1)


def sac(seed: int = 0) -> SAC:
    # A rollout of 50 steps between relabellings; updates from step 100 on.
    return SAC("MlpPolicy", "Pendulum-v1", learning_starts=100, train_freq=(50, "step"), gradient_steps=50,
               batch_size=64, policy_kwargs={"net_arch": [32, 32]}, seed=seed)


def critic_rater(model: SAC, sign: float, entropy_span: float | None = None):
    """Rates a transition by +-(the critic's advantage of its action), evaluated when the rating is made."""
    def rate(obs: np.ndarray, action: np.ndarray, _next_obs: np.ndarray) -> float:
        return sign * float(callback.critic_advantages(obs[None], np.asarray(action).reshape(1, -1))[0])

    # window = one rollout: every rating is made with the critic the agreement is measured against.
    callback = RLHFEntropyTemperature(sources=[ScriptedFeedback(rate)], window=50, feedback_weight=0.0, smoothing=0.0,
                                      entropy_span=entropy_span)
    return callback


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_target_entropy_follows_the_rule(sign):
    model = sac()
    callback = critic_rater(model, sign)
    model.learn(400, callback=callback)
    base, span = -1.0, 1.0  # Pendulum: one action dimension
    assert callback.base_target_entropy == base and callback.entropy_span == span
    agreement = model.logger.name_to_value["rlhf/critic_agreement"]
    assert agreement == pytest.approx(sign, abs=1e-4)
    # smoothing=0: the target is exactly base - span * agreement
    assert model.target_entropy == pytest.approx(base - span * agreement)
    assert model.logger.name_to_value["train/target_entropy"] == pytest.approx(model.target_entropy)


@pytest.mark.slow
def test_disagreement_raises_sacs_temperature_relative_to_agreement():
    """SAC's own temperature update follows the target: it ends higher when the feedback disagrees.

    A span of 3 puts the targets (+2 and -4) on either side of the fresh policy's entropy, so the
    temperature rises in one run and falls in the other.
    """
    coefficients = {}
    for sign in (1.0, -1.0):
        model = sac(seed=1)
        model.learn(600, callback=critic_rater(model, sign, entropy_span=3.0))
        coefficients[sign] = float(th.exp(model.log_ent_coef.detach()))
    assert coefficients[-1.0] > 1.0 > coefficients[1.0], coefficients


def test_a_rating_of_states_alone_is_not_read_as_agreement_about_actions():
    """A rater that scores only how good the state is (the critic's value of the actor's own action
    there) correlates with Q(s, a) across states, but says nothing about which action is better:
    the agreement, measured on the critic's advantage, stays near 0."""
    model = sac(seed=2)

    def state_value(obs: np.ndarray, _action: np.ndarray, _next_obs: np.ndarray) -> float:
        return float(callback.policy_values(obs[None])[0])

    callback = RLHFEntropyTemperature(sources=[ScriptedFeedback(state_value)], window=50, feedback_weight=0.0,
                                      smoothing=0.0)
    agreements, on_values = [], []
    original = callback._after_relabel

    def spy(slots, feedback, enough):
        original(slots, feedback, enough)
        if "rlhf/critic_agreement" in model.logger.name_to_value and enough.sum() >= 10:
            observations = callback.log.observations[slots][enough]
            actions = callback.log.actions[slots][enough].reshape(len(observations), -1)
            agreements.append(model.logger.name_to_value["rlhf/critic_agreement"])
            on_values.append(np.corrcoef(feedback[enough], callback.critic_values(observations, actions))[0, 1])

    callback._after_relabel = spy
    model.learn(600, callback=callback)
    assert agreements and np.mean(on_values) > 0.5, on_values  # what a rule on Q(s, a) itself would read
    assert abs(np.mean(agreements)) < 0.3, agreements


def test_smoothing_is_a_moving_average_of_agreements():
    model = sac()
    callback = RLHFEntropyTemperature(sources=[ScriptedFeedback(lambda obs, action, _: float(obs[0]))], smoothing=0.5)
    seen = []
    original = callback._after_relabel

    def spy(slots, feedback, enough):
        original(slots, feedback, enough)
        seen.append((model.logger.name_to_value.get("rlhf/critic_agreement"), callback.smoothed_agreement))

    callback._after_relabel = spy
    model.learn(300, callback=callback)
    expected = 0.0
    for agreement, smoothed in seen:
        if agreement is not None:  # before updates the critic may be constant: then nothing changes
            expected = 0.5 * expected + 0.5 * agreement
        assert smoothed == pytest.approx(expected)
    assert model.target_entropy == pytest.approx(-1.0 - expected)


def test_models_without_a_learnt_temperature_are_refused():
    callback = RLHFEntropyTemperature(sources=[ScriptedFeedback(lambda *_: 0.0)])
    with pytest.raises(ValueError, match="TD3 is not a SAC learning its entropy coefficient"):
        TD3("MlpPolicy", "Pendulum-v1").learn(10, callback=callback)
    fixed = RLHFEntropyTemperature(sources=[ScriptedFeedback(lambda *_: 0.0)])
    with pytest.raises(ValueError, match="SAC is not a SAC learning"):
        SAC("MlpPolicy", "Pendulum-v1", ent_coef=0.1).learn(10, callback=fixed)
    quantiles = RLHFEntropyTemperature(sources=[ScriptedFeedback(lambda *_: 0.0)])
    with pytest.raises(ValueError, match="TQC is not a SAC"):  # its critics give quantiles, not Q-values
        TQC("MlpPolicy", "Pendulum-v1").learn(10, callback=quantiles)
