"""SAC with RLHF relabelling alone vs with RLHFEntropyTemperature, under feedback that disagrees
with the environment reward. Pendulum-v1.

The rater prefers gentle torques (score ``-|torque|`` per transition, weight 1), while the
environment rewards swinging up, which needs strong torques. Per seed, same SAC settings
(rl-zoo3's Pendulum-v1 entry), two runs:

* ``relabel``     : ``RLHFRewardRelabel`` only;
* ``temperature`` : ``RLHFEntropyTemperature`` (the same relabelling, plus the target entropy rule,
  its agreement measured on the critic's advantage ``Q(s, a) - Q(s, mu(s))``).

Reported after the budget: the environment return and the preferred-behaviour metric (mean
|torque| per step, lower is what the rater wants), both over 10 deterministic episodes, and the
final entropy target and coefficient.

    nice -n 10 python benchmarks/bench_rlhf_temperature.py --seeds 5
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC

from sb3_ext.callbacks import RLHFEntropyTemperature, RLHFRewardRelabel
from sb3_ext.rlhf import ScriptedFeedback

SETTINGS = {"learning_rate": 1e-3, "learning_starts": 1000, "train_freq": (200, "step"), "gradient_steps": 200,
            "buffer_size": 50_000, "policy_kwargs": {"net_arch": [64, 64]}}


def gentle(_obs: np.ndarray, action: np.ndarray, _next_obs: np.ndarray) -> float:
    return -float(np.abs(action).mean())


def evaluate(model: SAC, seed: int) -> tuple[float, float]:
    env = gym.make("Pendulum-v1")
    returns, torques = [], []
    for episode in range(10):
        obs, _ = env.reset(seed=10_000 + 100 * seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            torques.append(abs(float(action[0])))
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.mean(torques))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=8000)
    args = parser.parse_args()
    th.set_num_threads(1)
    print(f"Pendulum-v1, SAC {args.budget} steps, rater prefers gentle torques (-|a|, weight 1)", flush=True)
    rows: dict[str, list] = {"relabel": [], "temperature": []}
    for seed in range(args.seeds):
        for name in rows:
            callback_class = RLHFRewardRelabel if name == "relabel" else RLHFEntropyTemperature
            callback = callback_class(sources=[ScriptedFeedback(gentle)], feedback_weight=1.0, window=1000)
            model = SAC(
                "MlpPolicy", "Pendulum-v1", seed=seed, **{**SETTINGS, "policy_kwargs": dict(SETTINGS["policy_kwargs"])}
            )
            model.learn(args.budget, callback=callback)
            env_return, torque = evaluate(model, seed)
            coefficient = float(th.exp(model.log_ent_coef.detach()))
            rows[name].append((env_return, torque))
            print(
                f"seed {seed} {name:<12}: env return {env_return:8.1f}, mean |torque| {torque:.3f}, "
                f"target entropy {model.target_entropy:.2f}, ent_coef {coefficient:.4f}, "
                f"agreement {model.logger.name_to_value.get('rlhf/smoothed_agreement', float('nan')):.3f}",
                flush=True,
            )
    for name, values in rows.items():
        returns, torques = np.array(values).T
        print(f"{name}: env return mean {returns.mean():.1f} median {np.median(returns):.1f} (min {returns.min():.1f}), "
              f"mean |torque| mean {torques.mean():.3f} median {np.median(torques):.3f}")
    differences = np.array(rows["temperature"]) - np.array(rows["relabel"])
    print(f"temperature - relabel per seed: return {np.round(differences[:, 0], 1).tolist()}, "
          f"|torque| {np.round(differences[:, 1], 3).tolist()}")


if __name__ == "__main__":
    main()
