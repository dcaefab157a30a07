"""Optuna samplers for sb3-ext's algorithms, in rl-zoo3's sampler/converter convention.

rl-zoo3 needs two functions per algorithm: a *sampler* that suggests values on an Optuna trial
and returns model hyperparameters (``--optimize``), and a *converter* that rebuilds those
hyperparameters from a stored trial's ``params`` (``--trial-id``). Here each algorithm writes
only a ``suggest_*`` function (what to search, with its own knobs: the REINFORCE baseline,
DelayedTD3's ``policy_delay``, ...) and a ``convert_*`` function; :func:`make_sampler` builds
the sampler as "suggest, then convert ``trial.params``", so a trial reloaded with ``--trial-id``
trains with exactly the hyperparameters it was scored with.

Trial parameters use rl-zoo3's names where they mean the same thing (``one_minus_gamma``,
``batch_size_pow``, ``net_arch`` as a size name, ...), so studies read the same way, and the
off-policy conversion is rl-zoo3's own ``convert_offpolicy_params``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import optuna
from rl_zoo3.hyperparams_opt import (
    convert_offpolicy_params,
    convert_onpolicy_params,
    sample_a2c_params,
    sample_ppo_params,
)
from torch import nn

Suggest = Callable[[optuna.Trial], None]
Sampler = Callable[..., dict[str, Any]]  # (trial, n_actions, n_envs, additional_args) -> hyperparams


class Converter(Protocol):
    """trial.params -> hyperparameters, with rl-zoo3's own converters' signature."""

    def __call__(self, sampled_params: dict[str, Any]) -> dict[str, Any]: ...

# Same sizes and activations as rl-zoo3's on-policy samplers.
ON_POLICY_NET_ARCHS = {"tiny": [64], "small": [64, 64], "medium": [256, 256]}
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
# Same as rl-zoo3's off-policy sizes (convert_offpolicy_params), for converters that cannot use it.
OFF_POLICY_NET_ARCHS = {"small": [64, 64], "medium": [256, 256]}


def make_sampler(suggest: Suggest, convert: Converter) -> Sampler:
    """An rl-zoo3 sampler that suggests with ``suggest`` and returns ``convert(trial.params)``."""

    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        suggest(trial)
        return convert(trial.params)

    return sample


def suggest_reinforce(trial: optuna.Trial) -> None:
    """REINFORCE: the baseline option and return normalisation, beside the usual step sizes."""
    trial.suggest_int("n_steps_pow", 5, 11)
    trial.suggest_float("one_minus_gamma", 0.0001, 0.05, log=True)
    trial.suggest_float("learning_rate", 1e-5, 0.01, log=True)
    baseline = trial.suggest_categorical("baseline", ["none", "mean", "value"])
    if baseline == "value":
        trial.suggest_float("vf_coef", 0.1, 1.0)
    trial.suggest_categorical("normalize_returns", [False, True])
    trial.suggest_float("ent_coef", 1e-8, 0.05, log=True)
    trial.suggest_float("max_grad_norm", 0.3, 10.0, log=True)
    trial.suggest_categorical("net_arch", sorted(ON_POLICY_NET_ARCHS))
    trial.suggest_categorical("activation_fn", sorted(ACTIVATIONS))


def convert_reinforce_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """REINFORCE hyperparameters from the params of :func:`suggest_reinforce`."""
    net_arch = ON_POLICY_NET_ARCHS[sampled_params["net_arch"]]
    hyperparams = {
        "n_steps": 2 ** sampled_params["n_steps_pow"],
        "gamma": 1 - sampled_params["one_minus_gamma"],
        "learning_rate": sampled_params["learning_rate"],
        "baseline": None if sampled_params["baseline"] == "none" else sampled_params["baseline"],
        "normalize_returns": sampled_params["normalize_returns"],
        "ent_coef": sampled_params["ent_coef"],
        "max_grad_norm": sampled_params["max_grad_norm"],
        "policy_kwargs": {
            "net_arch": {"pi": net_arch, "vf": net_arch},
            "activation_fn": ACTIVATIONS[sampled_params["activation_fn"]],
        },
    }
    if "vf_coef" in sampled_params:
        hyperparams["vf_coef"] = sampled_params["vf_coef"]
    return hyperparams


def suggest_delayed_td3(trial: optuna.Trial) -> None:
    """DelayedTD3: rl-zoo3's TD3 space plus the actor delay and the target smoothing noise.

    Exploration noise is left to the YAML entry (``noise_type``/``noise_std`` or our
    ``DecayingNoise`` callback): a sampled noise would override the first silently and clash with
    the second, which refuses a model that already has a noise.
    """
    trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
    trial.suggest_int("batch_size_pow", 5, 9)
    trial.suggest_float("learning_rate", 1e-5, 0.002, log=True)
    trial.suggest_int("train_freq", 1, 10)
    trial.suggest_float("tau", 0.001, 0.08, log=True)
    trial.suggest_int("policy_delay", 1, 5)
    trial.suggest_float("target_policy_noise", 0.05, 0.5)
    trial.suggest_float("target_noise_clip", 0.1, 1.0)
    trial.suggest_categorical("net_arch", ["small", "medium", "big"])


def suggest_twin_dqn(trial: optuna.Trial) -> None:
    """TwinDQN: rl-zoo3's DQN space plus the target rule, soft updates and the critics' trunk."""
    trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
    trial.suggest_int("batch_size_pow", 5, 8)
    trial.suggest_float("learning_rate", 1e-5, 0.002, log=True)
    train_freq = trial.suggest_int("train_freq", 1, 10)
    trial.suggest_int("subsample_steps", 1, min(train_freq, 8))
    trial.suggest_float("exploration_fraction", 0.0, 0.5)
    trial.suggest_float("exploration_final_eps", 0.0, 0.2)
    trial.suggest_int("target_update_interval", 1, 20000, log=True)
    trial.suggest_float("tau", 0.005, 1.0, log=True)
    trial.suggest_categorical("target_reduction", ["min", "mean"])
    trial.suggest_categorical("double_q", [True, False])
    trial.suggest_categorical("share_trunk", [True, False])
    trial.suggest_categorical("net_arch", ["small", "medium"])


def suggest_quantile_dqn(trial: optuna.Trial) -> None:
    """QuantileDQN: TwinDQN's space plus the quantiles, twin heads and risk-aware acting."""
    suggest_twin_dqn(trial)
    trial.suggest_int("n_quantiles", 5, 50)
    trial.suggest_categorical("n_critics", [1, 2])
    if trial.suggest_categorical("risk_measure", ["mean", "cvar"]) == "cvar":
        trial.suggest_float("risk_alpha", 0.05, 1.0)


def convert_dqn_family_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """TwinDQN / QuantileDQN hyperparameters: rl-zoo3's off-policy conversion (which already moves
    ``n_quantiles`` into ``policy_kwargs``), with the critics' layout moved there too."""
    hyperparams = convert_offpolicy_params(sampled_params)
    for key in ("share_trunk", "n_critics"):
        if key in hyperparams:
            hyperparams["policy_kwargs"][key] = hyperparams.pop(key)
    return hyperparams


def suggest_maac(trial: optuna.Trial) -> None:
    """MAAC: SAC-style step sizes plus the attention critic's size and the baseline's samples."""
    trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
    trial.suggest_int("batch_size_pow", 6, 9)
    trial.suggest_float("learning_rate", 1e-5, 0.003, log=True)
    trial.suggest_float("tau", 0.001, 0.05, log=True)
    trial.suggest_int("train_freq", 1, 8)
    trial.suggest_int("n_action_samples", 2, 16, log=True)
    trial.suggest_float("attention_l2", 1e-5, 1e-2, log=True)
    trial.suggest_categorical("attention_heads", [1, 2, 4])
    trial.suggest_categorical("critic_hidden_dim", [64, 128, 256])
    trial.suggest_categorical("share_critic", [False, True])
    trial.suggest_categorical("net_arch", ["small", "medium"])


def convert_maac_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """MAAC hyperparameters from the params of :func:`suggest_maac`."""
    hyperparams = convert_offpolicy_params(sampled_params)
    for key in ("attention_heads", "critic_hidden_dim", "share_critic"):
        hyperparams["policy_kwargs"][key] = hyperparams.pop(key)
    return hyperparams


def suggest_phase2(trial: optuna.Trial) -> None:
    """Phase2: the power-law rationality, the warm-up schedule and the kind of targets."""
    trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True)
    trial.suggest_int("batch_size_pow", 5, 8)
    trial.suggest_int("target_update_interval", 10, 500, log=True)
    trial.suggest_float("beta_r", 1.0, 50.0, log=True)
    trial.suggest_int("beta_r_rampup_steps", 100, 2000, log=True)
    for stage in ("v_h_e", "x_h", "q_r"):
        trial.suggest_int(f"warmup_{stage}_steps", 100, 1000, log=True)
    trial.suggest_categorical("model_based_targets", [True, False])
    trial.suggest_float("goal_resample_prob", 0.0, 0.1)
    trial.suggest_float("exploration_final_eps", 0.0, 0.1)
    trial.suggest_categorical("net_arch", ["small", "medium"])


def convert_phase2_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Phase2 hyperparameters from the params of :func:`suggest_phase2`."""
    hyperparams = dict(sampled_params)
    hyperparams["batch_size"] = 2 ** hyperparams.pop("batch_size_pow")
    hyperparams["policy_kwargs"] = {"net_arch": OFF_POLICY_NET_ARCHS[hyperparams.pop("net_arch")]}
    return hyperparams


def suggest_shared_actor(trial: optuna.Trial) -> None:
    """SharedActor: PPO's knobs, in rl-zoo3's names, plus who shares a network.

    ``n_steps`` counts steps per agent slot and ``batch_size`` agent-transitions, so a rollout
    holds ``n_steps * n_agents * n_envs`` transitions: the ranges are narrower than rl-zoo3's
    single-agent PPO space, whose corners (4096 steps in batches of 4) cost hours per trial here.
    """
    trial.suggest_int("n_steps_pow", 5, 10)
    trial.suggest_int("batch_size_pow", 6, 11)
    trial.suggest_categorical("n_epochs", [1, 5, 10])
    trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
    trial.suggest_float("one_minus_gae_lambda", 0.0001, 0.1, log=True)
    trial.suggest_float("learning_rate", 1e-5, 0.002, log=True)
    trial.suggest_float("ent_coef", 1e-8, 0.1, log=True)
    trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3])
    trial.suggest_categorical("net_arch", sorted(ON_POLICY_NET_ARCHS))
    trial.suggest_categorical("activation_fn", sorted(ACTIVATIONS))
    trial.suggest_categorical("sharing", ["team", "agent", "all"])


def suggest_aux_heads(trial: optuna.Trial) -> None:
    """The auxiliary heads' weights (AuxPPO, AuxA2C); they pass through rl-zoo3's on-policy converter."""
    trial.suggest_float("dynamics_coef", 0.0, 1.0)
    trial.suggest_float("prior_kl_coef", 0.0, 2.0)
    trial.suggest_categorical("prior_kl_steps", [10_000, 50_000, 200_000])
    trial.suggest_float("offline_value_coef", 0.0, 1.0)
    trial.suggest_float("clone_coef", 0.0, 2.0)


def with_aux_heads(base: Sampler) -> Sampler:
    """rl-zoo3's own sampler of the base algorithm, then the auxiliary heads' weights."""

    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        hyperparams = base(trial, n_actions, n_envs, additional_args)
        suggest_aux_heads(trial)
        return convert_onpolicy_params(trial.params) | hyperparams

    return sample


sample_aux_ppo_params = with_aux_heads(sample_ppo_params)
sample_aux_a2c_params = with_aux_heads(sample_a2c_params)
sample_reinforce_params = make_sampler(suggest_reinforce, convert_reinforce_params)
sample_twin_dqn_params = make_sampler(suggest_twin_dqn, convert_dqn_family_params)
sample_quantile_dqn_params = make_sampler(suggest_quantile_dqn, convert_dqn_family_params)
sample_maac_params = make_sampler(suggest_maac, convert_maac_params)
sample_phase2_params = make_sampler(suggest_phase2, convert_phase2_params)
sample_delayed_td3_params = make_sampler(suggest_delayed_td3, convert_offpolicy_params)
sample_shared_actor_params = make_sampler(suggest_shared_actor, convert_onpolicy_params)
