"""LatticeGrowth-v0 and LatticeKMC refuse inputs that would silently produce NaN, and take numpy numbers."""

import numpy as np
import pytest

from sb3_ext.envs.lattice.engine import LatticeKMC
from sb3_ext.envs.lattice.env import LatticeGrowthEnv
from sb3_ext.envs.lattice.physics import SOSPhysics


def test_a_rate_that_would_overflow_is_refused_when_the_env_is_built():
    with pytest.raises(
        ValueError, match=r"physics: the total event rate of a 8x8 lattice could reach inf/s, .*lower deposition_rate or nu"
    ):
        LatticeGrowthEnv(deposition_rate=1e308)
    with pytest.raises(ValueError, match=r"could reach 6\.4e\+101/s"):
        LatticeKMC(8, 8, 5, SOSPhysics(deposition_rate=1e100))
    # the largest allowed rates still step with finite numbers
    env = LatticeGrowthEnv(deposition_rate=1e98 / 64)
    env.reset(seed=0)
    observation, reward, _, _, info = env.step(env.action_space.sample())
    assert np.isfinite(observation).all() and np.isfinite(reward)
    assert np.isfinite(info["ess"]) and np.isfinite(info["time"])


@pytest.mark.parametrize("time", [float("nan"), float("inf"), "1.0", None])
def test_run_until_refuses_a_time_that_is_not_a_finite_number(time):
    engine = LatticeKMC(4, 4, 3, seed=0)
    with pytest.raises(ValueError, match="time: expected a finite number of seconds"):
        engine.run_until(time)
    assert engine.n_events == 0 and not engine.is_full


def test_numpy_numbers_are_numbers():
    env = LatticeGrowthEnv(temperature=np.float32(600), deposition_rate=np.float16(1), n_swarm=np.int64(2))
    assert env.unwrapped.engine.physics.temperature == 600.0 and type(env.unwrapped.engine.physics.temperature) is float
    assert LatticeKMC(4, 4, 3, seed=0).run_until(np.float32(0.5)) > 0
