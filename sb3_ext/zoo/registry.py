"""The one place that adds sb3-ext's algorithms to rl-zoo3.

rl-zoo3 looks algorithms up in three module-level dicts: ``rl_zoo3.utils.ALGOS`` (key -> class),
``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` (key -> Optuna sampler, for ``--optimize``) and
``HYPERPARAMS_CONVERTER`` (key -> function turning a stored trial's params into hyperparameters,
for ``--trial-id``). Its scripts import these dicts by reference, so adding entries to them before
a script parses its arguments is all it takes; nothing of rl-zoo3 is copied or patched.

Adding an algorithm to the zoo = one ``ZooAlgorithm`` entry below, one ``sb3_ext/hyperparams/<key>.yml``
and one sampler in :mod:`sb3_ext.zoo.samplers` (``tests/test_zoo_coverage.py`` fails otherwise).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from rl_zoo3 import hyperparams_opt, utils
from rl_zoo3.hyperparams_opt import convert_offpolicy_params, convert_onpolicy_params
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_ext.zoo import samplers
from sb3_ext.zoo.samplers import Converter, Sampler


@dataclass(frozen=True)
class ZooAlgorithm:
    """One algorithm as rl-zoo3 sees it: where its class lives and how to search its hyperparameters."""

    class_path: str  # "module:ClassName", imported only when the zoo is registered
    sampler: Sampler
    converter: Converter
    #: trains on agent slots of a joint multi-agent env (see :mod:`sb3_ext.zoo.multi_agent`)
    multi_agent: bool = False

    def load_class(self) -> type[BaseAlgorithm]:
        module_name, class_name = self.class_path.split(":")
        return getattr(importlib.import_module(module_name), class_name)


#: zoo key (the algorithm's folder name) -> its registration.
ZOO_ALGORITHMS: dict[str, ZooAlgorithm] = {
    "reinforce": ZooAlgorithm(
        "sb3_ext.reinforce:REINFORCE", samplers.sample_reinforce_params, samplers.convert_reinforce_params
    ),
    "twin_dqn": ZooAlgorithm(
        "sb3_ext.twin_dqn:TwinDQN", samplers.sample_twin_dqn_params, samplers.convert_dqn_family_params
    ),
    "quantile_dqn": ZooAlgorithm(
        "sb3_ext.quantile_dqn:QuantileDQN", samplers.sample_quantile_dqn_params, samplers.convert_dqn_family_params
    ),
    "maac": ZooAlgorithm(
        "sb3_ext.maac:MAAC", samplers.sample_maac_params, samplers.convert_maac_params, multi_agent=True
    ),
    "phase2": ZooAlgorithm("sb3_ext.phase2:Phase2", samplers.sample_phase2_params, samplers.convert_phase2_params),
    "shared_actor": ZooAlgorithm(
        "sb3_ext.shared_actor:SharedActor",
        samplers.sample_shared_actor_params,
        convert_onpolicy_params,
        multi_agent=True,
    ),
    "aux_ppo": ZooAlgorithm("sb3_ext.aux_heads:AuxPPO", samplers.sample_aux_ppo_params, convert_onpolicy_params),
    "aux_a2c": ZooAlgorithm("sb3_ext.aux_heads:AuxA2C", samplers.sample_aux_a2c_params, convert_onpolicy_params),
    "delayed_td3": ZooAlgorithm(
        "sb3_ext.delayed_td3:DelayedTD3", samplers.sample_delayed_td3_params, convert_offpolicy_params
    ),
}


def register_zoo() -> None:
    """Add every algorithm of :data:`ZOO_ALGORITHMS` to rl-zoo3's registries (idempotent)."""
    for key, entry in ZOO_ALGORITHMS.items():
        utils.ALGOS[key] = entry.load_class()
        hyperparams_opt.HYPERPARAMS_SAMPLER[key] = entry.sampler
        hyperparams_opt.HYPERPARAMS_CONVERTER[key] = entry.converter
