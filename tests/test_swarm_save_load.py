"""Every multi-agent model saved here acts identically when loaded in a fresh Python process."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from multiagent_toys import CountdownEnv, one_torch_thread  # noqa: F401
from stable_baselines3 import PPO

from sb3_ext.envs.swarm.vec import make_swarm2d_vec_env
from sb3_ext.maac import MAAC
from sb3_ext.multiagent.vec import make_parallel_vec_env
from sb3_ext.nca import NCAPolicy
from sb3_ext.shared_actor import SharedActor

LOADER = """
import sys
import numpy as np
from stable_baselines3 import PPO
from sb3_ext.maac import MAAC
from sb3_ext.shared_actor import SharedActor

folder = sys.argv[1]
classes = {"MAAC": MAAC, "SharedActor": SharedActor, "PPO": PPO}
actions = {}
for name in sys.argv[2:]:
    kind = name.split("-")[0]
    model = classes[kind].load(f"{folder}/{name}.zip", device="cpu")
    obs = np.load(f"{folder}/{name}.npy")
    actions[name] = model.predict(obs, deterministic=True)[0]
np.savez(f"{folder}/loaded.npz", **actions)
"""


def test_models_act_identically_after_loading_in_a_fresh_process(tmp_path: Path):
    tiny = dict(net_arch=[16])
    swarm = make_swarm2d_vec_env(n_copies=2, seed=0, max_cycles=10)
    swarm_joint = make_swarm2d_vec_env(n_copies=2, seed=0, max_cycles=10, joint_observation=True)
    countdown = make_parallel_vec_env(lambda: CountdownEnv(teams=(0, 1, 1)), n_copies=2)
    models = {
        "MAAC-mlp-continuous": MAAC("MlpPolicy", swarm, learning_starts=32, batch_size=8,
                                    policy_kwargs=dict(net_arch=[16], critic_hidden_dim=16)),
        "MAAC-nca-discrete": MAAC("NCAPolicy", countdown, learning_starts=12, batch_size=8,
                                  policy_kwargs=dict(nca_hidden_dim=8, position_indices=None, critic_hidden_dim=8)),
        "SharedActor-mlp": SharedActor("MlpPolicy", swarm, n_steps=8, batch_size=32, policy_kwargs=tiny),
        "SharedActor-nca": SharedActor("NCAPolicy", swarm_joint, n_steps=8, batch_size=32,
                                       policy_kwargs=dict(nca_hidden_dim=8, net_arch=[8])),
        "PPO-nca": PPO(NCAPolicy, swarm_joint, n_steps=8, batch_size=32, policy_kwargs=dict(nca_hidden_dim=8)),
    }  # fmt: skip
    expected = {}
    for name, model in models.items():
        model.learn(96)
        model.save(tmp_path / f"{name}.zip")
        obs = model.env.reset()
        np.save(tmp_path / f"{name}.npy", obs)
        expected[name] = model.predict(obs, deterministic=True)[0]

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", LOADER, str(tmp_path), *models], check=True, env=env)
    loaded = np.load(tmp_path / "loaded.npz")
    for name in models:
        np.testing.assert_array_equal(loaded[name], expected[name], err_msg=name)
