"""Every algorithm sb3-ext exports is in the zoo: registry entry, hyperparams YAML, Optuna sampler."""

from __future__ import annotations

import optuna
import pytest
import yaml
from rl_zoo3 import hyperparams_opt, utils
from stable_baselines3.common.base_class import BaseAlgorithm

import sb3_ext
from sb3_ext.zoo.config import HYPERPARAMS_DIR, check_hyperparameter_names
from sb3_ext.zoo.registry import ZOO_ALGORITHMS, register_zoo

# The hyperparameters only that algorithm has: its sampler must search them.
OWN_HYPERPARAMETERS = {
    "reinforce": ["baseline", "normalize_returns"],
    "aux_ppo": ["dynamics_coef", "prior_kl_coef", "prior_kl_steps", "offline_value_coef", "clone_coef"],
    "aux_a2c": ["dynamics_coef", "prior_kl_coef", "prior_kl_steps", "offline_value_coef", "clone_coef"],
    "delayed_td3": ["policy_delay", "target_policy_noise", "target_noise_clip"],
    "shared_actor": ["sharing"],
    "twin_dqn": ["target_reduction", "double_q", "tau"],
    "quantile_dqn": ["risk_measure", "risk_alpha", "target_reduction"],
    "maac": ["n_action_samples", "attention_l2"],
    "phase2": ["beta_r", "beta_r_rampup_steps", "warmup_q_r_steps", "model_based_targets"],
}
# ... and those that rl-zoo3 passes inside policy_kwargs.
OWN_POLICY_HYPERPARAMETERS = {
    "twin_dqn": ["share_trunk"],
    "quantile_dqn": ["n_quantiles", "n_critics", "share_trunk"],
    "maac": ["attention_heads", "critic_hidden_dim", "share_critic"],
}
SAMPLER_ARGS = {"n_actions": 2, "n_envs": 1, "additional_args": {"using_her_replay_buffer": False, "her_kwargs": {}}}


def exported_algorithms() -> list[type[BaseAlgorithm]]:
    """The BaseAlgorithm subclasses among ``sb3_ext.__all__``."""
    objects = (getattr(sb3_ext, name) for name in sb3_ext.__all__)
    return [obj for obj in objects if isinstance(obj, type) and issubclass(obj, BaseAlgorithm)]


def test_every_exported_algorithm_has_a_registry_entry_a_yaml_and_a_sampler():
    registered = {entry.load_class(): key for key, entry in ZOO_ALGORITHMS.items()}
    for algorithm in exported_algorithms():
        assert algorithm in registered, f"{algorithm.__name__} has no entry in sb3_ext.zoo.registry.ZOO_ALGORITHMS"
        key = registered[algorithm]
        # sb3_ext/<feature>/<key>.py: a feature folder may hold several algorithms (aux_heads: aux_ppo, aux_a2c)
        assert algorithm.__module__.rsplit(".", 1)[1] == key, f"zoo key {key!r} is not {algorithm.__name__}'s module name"
        conf_file = HYPERPARAMS_DIR / f"{key}.yml"
        assert conf_file.is_file(), f"{algorithm.__name__} has no {conf_file}"
        entries = yaml.safe_load(conf_file.read_text())
        assert entries, f"{conf_file} has no env entry"
        for env_id, hyperparams in entries.items():
            check_hyperparameter_names(hyperparams, algorithm, str(conf_file), env_id)
        assert callable(ZOO_ALGORITHMS[key].sampler) and callable(ZOO_ALGORITHMS[key].converter)


def test_register_zoo_fills_rl_zoo3_registries():
    register_zoo()
    for key, entry in ZOO_ALGORITHMS.items():
        assert utils.ALGOS[key] is entry.load_class()
        assert hyperparams_opt.HYPERPARAMS_SAMPLER[key] is entry.sampler
        assert hyperparams_opt.HYPERPARAMS_CONVERTER[key] is entry.converter


@pytest.mark.parametrize("key", sorted(ZOO_ALGORITHMS))
@pytest.mark.parametrize("seed", range(5))
def test_sampled_hyperparameters_are_valid_and_reload_from_the_trial(key, seed):
    """What --optimize trains with is what --trial-id rebuilds from the stored params."""
    entry = ZOO_ALGORITHMS[key]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    sampled = entry.sampler(trial, **SAMPLER_ARGS)
    check_hyperparameter_names(sampled, entry.load_class(), "sampler", key)
    assert entry.converter(trial.params) == sampled


@pytest.mark.parametrize("key", sorted(ZOO_ALGORITHMS))
def test_sampler_searches_the_algorithm_own_hyperparameters(key):
    assert key in OWN_HYPERPARAMETERS, f"say which hyperparameters only {key} has"
    entry = ZOO_ALGORITHMS[key]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    samples = [entry.sampler(study.ask(), **SAMPLER_ARGS) for _ in range(20)]
    for name in OWN_HYPERPARAMETERS[key]:
        values = {repr(sample[name]) for sample in samples if name in sample}
        assert len(values) > 1, f"{key} sampler does not search {name}"
    for name in OWN_POLICY_HYPERPARAMETERS.get(key, []):
        values = {repr(sample["policy_kwargs"][name]) for sample in samples}
        assert len(values) > 1, f"{key} sampler does not search policy_kwargs[{name!r}]"
