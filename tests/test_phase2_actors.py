"""Actor-learner Phase 2 (``n_actors > 1``) against synchronous training on the same budget."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from scipy import stats

import sb3_ext  # noqa: F401
from sb3_ext.phase2 import Phase2
from sb3_ext.phase2.evaluation import agreement, visited_states
from sb3_ext.phase2.exact import occupancy, solve

FAST = dict(
    warmup_v_h_e_steps=150, warmup_x_h_steps=150, warmup_q_r_steps=200, beta_r_rampup_steps=300,
    target_update_interval=50, lr_decay_steps=1000, policy_kwargs=dict(net_arch=[64, 64]),
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


def train(n_actors, seed, max_steps, budget):
    env = gym.make("AssistGrid-v0", map_name="line", max_steps=max_steps)
    model = Phase2("MlpPolicy", env, seed=seed, n_actors=n_actors, actor_sync_freq=20, **FAST)
    sol = solve(model.prior, model.config)
    states = visited_states(occupancy(model.prior, sol), model.prior.world.is_terminal)
    model.learn(budget)
    return model, agreement(model, sol, states)


def test_actors_reach_the_exact_values_with_the_same_update_budget():
    model, result = train(n_actors=2, seed=0, max_steps=2, budget=1000)
    assert model.num_timesteps == 1000
    # Same schedule as synchronous training: one update per step from step 65 (learning_starts
    # 64) to 499; the ramp starts at step 500 and clears the buffer, which holds a batch again
    # at step 564.
    assert model._n_updates == (499 - 64) + (1000 - 563)
    assert len(model.successor_cache) > 0 and float(model.policy.beta_r) == model.config.beta_r
    assert result.within(0.05), result


@pytest.mark.slow
def test_actor_learner_is_statistically_the_synchronous_algorithm():
    """5 seeds each on the 1-D world, horizon 3, 2000 steps: same accuracy distribution."""
    errors = {}
    for n_actors in (1, 2):
        results = [train(n_actors, seed, max_steps=3, budget=2000)[1] for seed in range(5)]
        assert all(r.within(0.05) for r in results), results
        errors[n_actors] = np.array([max(r.v_h_e, r.x_h, r.q_r) for r in results])
    # Welch's t-test on the worst relative error per run: no detectable difference.
    assert stats.ttest_ind(errors[1], errors[2], equal_var=False).pvalue > 0.01, errors
