"""Phase 2 against its world-model interface: a second, tiny world (tests/phase2_gate_world.py)."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from phase2_gate_world import SLIP, CellGoal, GateWorld, TowardPrior, gate_prior
from sb3_ext.phase2 import Phase2
from sb3_ext.phase2.env import WorldModelEnv
from sb3_ext.phase2.evaluation import evaluate
from sb3_ext.phase2.exact import reach_probabilities, solve
from sb3_ext.phase2.power import PowerParams
from test_phase2 import one_torch_thread  # noqa: F401  (autouse fixture)


def test_the_gate_world_is_a_gymnasium_env():
    check_env(WorldModelEnv(gate_prior()), skip_render_check=True)


def chain_reach(p_right, p_left, steps, start=0, goal=3):
    """Chance a walker on cells 0..3 (walls at both ends) first reaches ``goal`` within ``steps``."""
    dist = np.zeros(4)
    dist[start] = 1.0
    reached = 0.0
    for _ in range(steps):
        nxt = np.zeros(4)
        for cell, p in enumerate(dist):
            right, left = min(cell + 1, 3), max(cell - 1, 0)
            nxt[right] += p * p_right
            nxt[left] += p * p_left
            nxt[cell] += p * (1 - p_right - p_left)
        reached += nxt[goal]
        nxt[goal] = 0.0  # absorbed: first arrivals only
        dist = nxt
    return reached


def test_exact_solver_on_the_gate_world_by_hand():
    prior = gate_prior()
    sol = solve(prior, PowerParams(conventions="plain"))
    s0 = (0, 0, False)
    assert sol.states[0] == s0
    position = {s: i for i, s in enumerate(sol.states)}
    for s in sol.pi_r:  # topological order: successors come later
        assert all(position[s2] > position[s] for a in range(3) for s2 in prior.successors(s, a))
    # The far goal (cell 3) needs the gate open: the robot opens it first.
    assert int(np.argmax(sol.q_r[s0])) == 1
    far = [g.cell for g in sol.goal_pairs].index(3)
    # A robot that opens the gate every step: a plain random walk toward cell 3.
    opener = {s: np.eye(3)[1] for s in sol.pi_r}
    expected = chain_reach(0.8 * (1 - SLIP), 0.1 * (1 - SLIP), steps=4)
    assert reach_probabilities(prior, sol, opener)[far] == pytest.approx(expected, rel=1e-12)
    closer = {s: np.eye(3)[2] for s in sol.pi_r}
    assert reach_probabilities(prior, sol, closer)[far] == 0.0  # the gate never opens
    assert reach_probabilities(prior, sol, closer)[1 - far] == 1.0  # the human starts on cell 0


def test_phase2_learns_the_gate_world():
    """Phase2 and its evaluation on a world that shares no code with AssistGrid."""
    env = WorldModelEnv(gate_prior())
    model = Phase2("MlpPolicy", env, seed=0, conventions="plain", warmup_v_h_e_steps=150, warmup_x_h_steps=150,
                   warmup_q_r_steps=200, beta_r_rampup_steps=300, target_update_interval=50,
                   policy_kwargs=dict(net_arch=[64, 64]))
    sol = solve(model.prior, model.config)
    before = evaluate(model, sol)
    model.learn(1500)
    after = evaluate(model, sol)
    assert not before.within(0.05)
    assert after.within(0.05), after.summary()
    assert after.reach["learned_greedy"][1] > after.reach["uniform"][1] + 0.2  # the robot opens the gate


def test_goals_of_the_wrong_human_are_refused():
    with pytest.raises(ValueError, match="goals\\[0\\]: holds a goal of another human"):
        TowardPrior(GateWorld(), [[CellGoal(1, 3)]])
