"""MAAC: attention symmetry, the counterfactual baseline by enumeration, the joint buffer, learning."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from multiagent_toys import (  # noqa: F401
    CountdownEnv,
    one_torch_thread,
    random_spread_return,
    spread_summed_return,
    zoo_hyperparams,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

import sb3_ext  # noqa: F401  (registers Swarm2D-v0)
from sb3_ext.envs.swarm import swarm2d_v0
from sb3_ext.envs.swarm.vec import make_swarm2d_vec_env
from sb3_ext.maac import MAAC, AttentionCritic, JointReplayBuffer
from sb3_ext.maac.layers import AgentAttention
from sb3_ext.multiagent.joint import ParallelJointEnv
from sb3_ext.multiagent.vec import make_parallel_vec_env

N_AGENTS, OBS_DIM, ACT_DIM = 5, 6, 3


def permuted_parameters(critic: AttentionCritic, perm: th.Tensor) -> AttentionCritic:
    """The same critic with agent ``perm[i]``'s encoders and Q head moved to slot ``i``."""
    clone = AttentionCritic(N_AGENTS, OBS_DIM, ACT_DIM, hidden_dim=16, n_heads=2)
    clone.load_state_dict(critic.state_dict())
    with th.no_grad():
        for name, parameter in clone.named_parameters():
            if not name.startswith("attention."):  # per-agent weights have the agents first
                parameter.copy_(parameter[perm])
    return clone


def test_attention_is_permutation_equivariant_and_blind_to_the_order_of_the_others():
    th.manual_seed(0)
    attention = AgentAttention(dim=16, n_heads=4)
    queries, keys = th.randn(3, N_AGENTS, 16), th.randn(3, N_AGENTS, 16)
    perm = th.tensor([3, 0, 4, 1, 2])
    with th.no_grad():
        out = attention(queries, keys)
        out_perm = attention(queries[:, perm], keys[:, perm])
    th.testing.assert_close(out_perm.values, out.values[:, perm], atol=1e-6, rtol=1e-5)
    th.testing.assert_close(out.weights.diagonal(dim1=-2, dim2=-1), th.zeros(3, 4, N_AGENTS))
    th.testing.assert_close(out.weights.sum(-1), th.ones(3, 4, N_AGENTS))


def test_critic_is_equivariant_under_relabelling_the_agents():
    """Relabel agents (inputs and their own encoder/head together): every Q moves with its agent.
    In particular Q_0 does not depend on the order in which the other agents are listed."""
    th.manual_seed(1)
    critic = AttentionCritic(N_AGENTS, OBS_DIM, ACT_DIM, hidden_dim=16, n_heads=2)
    obs, actions = th.randn(4, N_AGENTS, OBS_DIM), th.randn(4, N_AGENTS, ACT_DIM)
    perm = th.tensor([0, 3, 1, 4, 2])  # agent 0 stays first, the others are reordered
    with th.no_grad():
        q, _ = critic(obs, actions)
        q_perm, _ = permuted_parameters(critic, perm)(obs[:, perm], actions[:, perm])
    th.testing.assert_close(q_perm, q[:, perm], atol=1e-6, rtol=1e-5)


def test_shared_critic_is_equivariant_over_agents():
    th.manual_seed(2)
    critic = AttentionCritic(N_AGENTS, OBS_DIM, ACT_DIM, hidden_dim=16, n_heads=2, share_agent_networks=True)
    obs, actions = th.randn(4, N_AGENTS, OBS_DIM), th.randn(4, N_AGENTS, ACT_DIM)
    perm = th.tensor([4, 2, 0, 1, 3])
    with th.no_grad():
        th.testing.assert_close(critic(obs[:, perm], actions[:, perm])[0], critic(obs, actions)[0][:, perm])


def test_counterfactual_baseline_is_the_expected_q_over_the_agents_own_policy():
    """Discrete toy, checked by enumeration with full critic evaluations and a numpy softmax."""
    model = MAAC("MlpPolicy", CountdownEnv(), seed=3, policy_kwargs=dict(net_arch=[8], critic_hidden_dim=8))
    n_actions = 2
    th.manual_seed(4)
    obs = th.randn(6, 3, 2)
    joint = th.randint(0, n_actions, (6, 3))
    q_taken, baseline, _ = model.counterfactual_baseline(obs, joint)

    with th.no_grad():
        logits = model.actor.logits(model.actor.trunk(obs)).numpy()
        expected_q = model.critic(obs, model.policy.encode_actions(joint))[0].numpy()
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected_baseline = np.zeros((6, 3))
    for agent in range(3):
        for action in range(n_actions):
            counterfactual = joint.clone()
            counterfactual[:, agent] = action  # only agent's own action changes
            with th.no_grad():
                q = model.critic(obs, model.policy.encode_actions(counterfactual))[0][:, agent].numpy()
            expected_baseline[:, agent] += probs[:, agent, action] * q
    np.testing.assert_allclose(q_taken.numpy(), expected_q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(baseline.numpy(), expected_baseline, rtol=1e-5, atol=1e-6)


def test_joint_buffer_keeps_env_copies_together():
    n_agents = 4  # three copies: 12 slots
    buffer = JointReplayBuffer(50, spaces.Box(-9, 9, (2,)), spaces.Box(-1, 1, (1,)), n_envs=12, n_agents=n_agents)
    for step in range(10):
        obs = np.array([[step, slot // n_agents] for slot in range(12)], np.float32)  # (step, copy)
        actions = np.arange(12, dtype=np.float32).reshape(12, 1) % n_agents  # agent index
        dones = np.array([step == 9] * 12)
        infos = [{"TimeLimit.truncated": step == 9 and slot % n_agents != 1} for slot in range(12)]
        buffer.add(obs, obs + 1, actions, np.arange(12, dtype=np.float32), dones, infos)
    sample = buffer.sample(64)
    assert sample.observations.shape == (64, n_agents, 2) and sample.rewards.shape == (64, n_agents)
    for obs, actions, rewards, next_obs, dones in zip(
        sample.observations, sample.actions, sample.rewards, sample.next_observations, sample.dones, strict=False
    ):
        assert len(set(obs[:, 0].tolist())) == 1 and len(set(obs[:, 1].tolist())) == 1  # one step, one copy
        assert actions[:, 0].tolist() == [0, 1, 2, 3]
        copy = int(obs[0, 1])
        assert rewards.tolist() == [copy * n_agents + a for a in range(n_agents)]
        th.testing.assert_close(next_obs, obs + 1)
        # At the last step only agent 1 terminated; the others were truncated (not done for TD).
        assert dones.tolist() == ([0.0, 1.0, 0.0, 0.0] if obs[0, 0] == 9 else [0.0] * 4)


def test_accepts_every_kind_of_multi_agent_env_and_names_the_wrong_ones():
    kwargs = dict(learning_starts=0, policy_kwargs=dict(net_arch=[8], critic_hidden_dim=8))
    for env in (
        swarm2d_v0.parallel_env(),
        "Swarm2D-v0",
        DummyVecEnv([lambda: ParallelJointEnv(swarm2d_v0.parallel_env())] * 2),
        make_swarm2d_vec_env(2),
    ):
        model = MAAC("MlpPolicy", env, **kwargs)
        assert model.policy.n_agents == 8
    with pytest.raises(ValueError, match="joint_observation=False"):
        MAAC("MlpPolicy", make_swarm2d_vec_env(1, joint_observation=True), **kwargs)
    with pytest.raises(ValueError, match="not multi-agent"):
        MAAC("MlpPolicy", gym.make("Pendulum-v1"), **kwargs)
    with pytest.raises(ValueError, match="n_action_samples"):
        MAAC("MlpPolicy", swarm2d_v0.parallel_env(), n_action_samples=1)


def test_learns_the_best_joint_action_and_logs_the_attention():
    """Toy bandit (reward of agent i: i + 10 * action): MAAC's actors move from the random
    policy (mean action 0.5) to always choosing 1."""
    env = make_parallel_vec_env(lambda: CountdownEnv(length=5), n_copies=4, seed=0)
    model = MAAC("MlpPolicy", env, learning_starts=60, batch_size=32, gamma=0.5, learning_rate=3e-3, seed=0,
                 policy_kwargs=dict(net_arch=[16], critic_hidden_dim=16, attention_heads=2))  # fmt: skip
    obs = env.reset()
    before = model.predict(obs, deterministic=False)[0]
    model.learn(1500)
    after = np.mean([model.predict(obs, deterministic=False)[0] for _ in range(20)])
    assert after > 0.95 and abs(before.mean() - 0.5) < 0.4
    for key in ("train/critic_loss", "train/attention_entropy", "train/alpha", "train/actor_loss"):
        assert np.isfinite(model.logger.name_to_value[key]), key


def test_zoo_hyperparameters_build_a_model_on_the_env_rl_zoo3_makes():
    """rl-zoo3 vectorises copies of the joint gymnasium env; MAAC unfolds it into agent slots."""
    policy, kwargs, n_envs = zoo_hyperparams("maac", "Swarm2D-v0")
    model = MAAC(policy, make_vec_env("Swarm2D-v0", n_envs=2), **kwargs)
    model.learn(160)
    assert model.env.num_envs == 16 and model.reward_scale == 20.0 and n_envs == 8
    assert model.replay_buffer.size() == 10 and model.replay_buffer.observations.shape[1:3] == (2, 8)


@pytest.mark.slow
def test_learns_simple_spread_far_beyond_random():
    """The benchmark's MAAC settings (bench_marl_yardsticks.py): about -53 after 150k agent-steps, random about -75."""
    from mpe2 import simple_spread_v3

    env = make_parallel_vec_env(lambda: simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=True),
                                n_copies=8, seed=0)  # fmt: skip
    model = MAAC("MlpPolicy", env, learning_starts=6000, batch_size=256, gamma=0.95, tau=0.01, n_action_samples=4,
                 seed=0, policy_kwargs=dict(net_arch=[64, 64], critic_hidden_dim=64))  # fmt: skip
    model.learn(150_000)
    trained = spread_summed_return(lambda obs: model.predict(obs, deterministic=True)[0])
    assert trained > random_spread_return() + 10.0
