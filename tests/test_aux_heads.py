"""On-policy auxiliary heads (AuxPPO, AuxA2C): return targets, the heads, the KL pull, metrics, learning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_ext.aux_heads import AuxA2C, AuxPPO, return_targets
from sb3_ext.callbacks import RunArtifacts
from sb3_ext.data import ChunkWriter

th.set_num_threads(1)


def cartpole_controller(observations: np.ndarray) -> np.ndarray:
    """A scripted CartPole policy that balances for the full 500 steps: push towards the pole's fall."""
    angle, angular_velocity = observations[:, 2], observations[:, 3]
    return (angle + 0.5 * angular_velocity > 0).astype(np.int64)


@pytest.fixture(scope="module")
def expert_chunks(tmp_path_factory):
    path = tmp_path_factory.mktemp("chunks") / "cartpole-expert"
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    with ChunkWriter(path, env.observation_space, env.action_space, n_envs=2, env_id="CartPole-v1") as writer:
        writer.record(env, cartpole_controller, 3000)
    return path


def test_return_targets_match_hand_computed_returns():
    gamma = 0.5
    # Two envs interleaved: env 0 rows 0, 2, 4, 6; env 1 rows 1, 3, 5, 7.
    rewards = np.array([1, 10, 2, 20, 3, 30, 4, 40], dtype=np.float32)
    dones = np.array([0, 0, 1, 0, 0, 1, 0, 0], dtype=bool)  # env 0 terminates at step 1, env 1 at step 2
    timeouts = np.array([0, 0, 0, 0, 0, 1, 0, 0], dtype=bool)  # env 1's end is a truncation
    targets = return_targets(rewards, dones, timeouts, n_envs=2, gamma=gamma)
    # env 0: episode [1, 2] terminated -> 1 + .5*2 = 2, 2; then [3, 4] runs to the end of the data -> bootstrap
    # env 1: episode [10, 20, 30] truncated -> bootstrap from row 5's next obs; then [40] -> bootstrap from row 7
    np.testing.assert_allclose(targets.partial, [2, 10 + 10 + 7.5, 2, 20 + 15, 3 + 2, 30, 4, 40])
    np.testing.assert_allclose(targets.discount, [0, 0.125, 0, 0.25, 0.25, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(targets.bootstrap[[1, 3, 5, 4, 6, 7]], [5, 5, 5, 6, 6, 7])


def test_prior_head_learns_the_recorded_behaviour(expert_chunks):
    model = AuxPPO("MlpPolicy", "CartPole-v1", offline_data=expert_chunks, prior_epochs=10, n_steps=64, seed=0)
    observations = th.as_tensor(model.offline.observations)
    expert_actions = cartpole_controller(model.offline.observations)

    def agreement() -> float:
        with th.no_grad():
            return float(np.mean(model.policy.prior_distribution(observations).mode().numpy() == expert_actions))

    before = agreement()
    model.fit_prior()
    # The controller's boundary runs through the densest states (a balanced pole), so ~90%, not 100%.
    assert agreement() > 0.85 and agreement() > before + 0.2


def test_kl_pull_moves_the_policy_to_the_prior_and_fades_out(expert_chunks):
    """Same seed and data: the KL term raises alignment with the prior; once prior_kl_steps have passed it is off."""
    def alignment_history(kl_coef: float, kl_steps: int) -> list[float]:
        model = AuxPPO("MlpPolicy", "CartPole-v1", offline_data=expert_chunks, prior_kl_coef=kl_coef, prior_kl_steps=kl_steps,
                       dynamics_coef=0.0, offline_value_coef=0.0, n_steps=256, batch_size=64, prior_epochs=10,
                       aux_epochs=8, warm_start_epochs=0, seed=0)
        history = []
        for _ in range(4):
            model.learn(256, reset_num_timesteps=False)
            history.append(model.logger.name_to_value["train/behaviour_prior_alignment"])
        return history

    pulled = alignment_history(kl_coef=5.0, kl_steps=100_000)
    unpulled = alignment_history(kl_coef=0.0, kl_steps=100_000)
    assert pulled[-1] > pulled[0] + 0.1 and pulled[-1] > unpulled[-1] + 0.1, (pulled, unpulled)
    faded = alignment_history(kl_coef=5.0, kl_steps=1)  # weight 0 from the first update on
    np.testing.assert_allclose(faded, unpulled, rtol=1e-5)


@pytest.mark.parametrize("algorithm, n_steps", [(AuxPPO, 128), (AuxA2C, 16)])
def test_dynamics_and_offline_values_are_learnt_and_metrics_reach_metrics_json(algorithm, n_steps, expert_chunks, tmp_path):
    def train(offline_value_coef: float, save_dir) -> dict:
        model = algorithm("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=1), offline_data=expert_chunks,
                          offline_value_coef=offline_value_coef, n_steps=n_steps, prior_epochs=2, seed=1)
        artifacts = RunArtifacts(str(save_dir), checkpoint_freq=10**9)
        model.learn(128 * 2 * 12, callback=artifacts, log_interval=max(1, 128 // n_steps))
        return json.loads((save_dir / "metrics.json").read_text())

    metrics = train(0.5, tmp_path / "with")
    for key in ("train/meta_value_alignment", "train/behaviour_prior_alignment", "train/dynamics_loss"):
        assert len(metrics[key]["values"]) >= 10, key
    dynamics = metrics["train/dynamics_loss"]["values"]
    assert np.mean(dynamics[-3:]) < 0.5 * np.mean(dynamics[:3])
    # Offline returns are near 100 (balanced poles): the value head climbs towards them, faster with their loss on.
    meta = metrics["train/meta_value_alignment"]["values"]
    meta_without = train(0.0, tmp_path / "without")["train/meta_value_alignment"]["values"]
    assert meta[-1] > meta[0] + 0.04 and meta[-1] > meta_without[-1] + 0.01, (meta, meta_without)


def test_without_offline_data_only_the_dynamics_head_trains_and_the_model_round_trips(tmp_path):
    model = AuxA2C("MlpPolicy", "Pendulum-v1", n_steps=32, seed=0)
    model.learn(32 * 4)
    assert "train/dynamics_loss" in model.logger.name_to_value
    assert "train/meta_value_alignment" not in model.logger.name_to_value
    model.save(tmp_path / "model")
    loaded = AuxA2C.load(tmp_path / "model")
    observations = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(observations, deterministic=True)[0],
                               model.predict(observations, deterministic=True)[0])
    assert loaded.policy.aux_net_arch == model.policy.aux_net_arch


def test_without_offline_data_auxppo_trains_exactly_as_ppo_while_its_dynamics_head_learns():
    """The heads draw their initial weights from a forked random stream, and without offline data
    the dynamics head learns on the actor's features without moving them (nor the actions: the
    clone term has nothing to hold), so AuxPPO is PPO bit for bit: a comparison with PPO measures
    the auxiliary losses, not a different initialisation."""
    kwargs = {"n_steps": 32, "batch_size": 64, "n_epochs": 2, "seed": 4}
    states, dynamics = {}, []
    for name, algorithm in (("plain", PPO), ("aux", AuxPPO)):
        # One after the other: SB3 seeds torch's global generator when a model is built.
        model = algorithm("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=4), **kwargs)
        initial = {key: value.clone() for key, value in model.policy.state_dict().items()}
        for _ in range(6):
            model.learn(64, reset_num_timesteps=False)
            if name == "aux":
                dynamics.append(model.logger.name_to_value["train/dynamics_loss"])
        states[name] = (initial, model.policy.state_dict())
    for when in (0, 1):
        for name, parameter in states["plain"][when].items():
            assert th.equal(parameter, states["aux"][when][name]), f"{name} differs ({['initially', 'after training'][when]})"
    assert np.mean(dynamics[-2:]) < 0.85 * np.mean(dynamics[:2]), dynamics  # the head learns on the side


def test_the_clone_term_holds_the_policy_while_offline_dynamics_shape_the_actor(expert_chunks):
    """With offline data the dynamics loss flows into the actor's layers; once the prior's pull has
    faded, PPG's clone term (``clone_coef``) keeps the actions where PPO left them.
    ``train/aux_policy_kl`` measures how far the auxiliary phase moved the policy."""
    moved = {}
    for coef in (0.0, 1.0):
        model = AuxPPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=1), offline_data=expert_chunks,
                       prior_kl_steps=1, offline_value_coef=0.0, prior_epochs=1, warm_start_epochs=0, n_steps=64,
                       batch_size=64, n_epochs=1, aux_epochs=4, clone_coef=coef, seed=1)
        model.learn(128 * 4)
        moved[coef] = model.logger.name_to_value["train/aux_policy_kl"]
    assert moved[1.0] < 0.5 * moved[0.0], moved


def test_mismatched_dataset_is_refused_with_its_path(expert_chunks):
    model = AuxPPO("MlpPolicy", "Pendulum-v1", offline_data=expert_chunks, n_steps=64, seed=0)
    with pytest.raises(ValueError, match=r"cartpole-expert.*observation space"):
        model.learn(64)


@pytest.mark.slow
def test_expert_chunks_speed_up_ppo_on_cartpole(expert_chunks):
    """Same seed, same live budget: AuxPPO guided by expert chunks scores higher than plain PPO.

    (benchmarks/bench_aux_heads.py measures it over several seeds and without chunks too.)
    """
    budget, kwargs = 1024, {"n_steps": 256, "batch_size": 64, "seed": 3}
    scores = {}
    for name, model in (("plain", PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=3), **kwargs)),
                        ("aux", AuxPPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=3),
                                       offline_data=expert_chunks, **kwargs))):
        model.learn(budget)
        scores[name] = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=100), n_eval_episodes=10)[0]
    assert scores["aux"] > scores["plain"] + 100, scores
