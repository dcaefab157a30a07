"""sb3-ext: training strategies that plug into Stable-Baselines3's own ``learn()`` loop.

Public classes are resolved lazily (PEP 562) so that ``import sb3_ext`` stays cheap: it only
registers the gymnasium environments, which is what subprocess workers and ``gymnasium.make``
need. ``from sb3_ext import TwinDQN`` imports the algorithm's module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from sb3_ext.envs.registration import register_envs

__version__ = "0.1.0"

# public name -> module that defines it; each area keeps its own block.
_LAZY_EXPORTS: dict[str, str] = {
    # --- lattice growth and curriculum callbacks ---
    "LatticeKMC": "sb3_ext.envs.lattice.engine",
    "LatticeGrowthEnv": "sb3_ext.envs.lattice.env",
    "SOSPhysics": "sb3_ext.envs.lattice.physics",
    "CurriculumTransfer": "sb3_ext.curriculum.transfer",
    "ESSEarlyStopping": "sb3_ext.curriculum.ess",
    "ManifestExport": "sb3_ext.callbacks.manifest",
    "MorphologyLogger": "sb3_ext.curriculum.morphology",
    "RunArtifacts": "sb3_ext.callbacks.artifacts",


    # --- value-based algorithms ---
    "TwinDQN": "sb3_ext.twin_dqn",
    "TwinDQNPolicy": "sb3_ext.twin_dqn",
    "QuantileDQN": "sb3_ext.quantile_dqn",
    "QuantileDQNPolicy": "sb3_ext.quantile_dqn",
    "DictNStepReplayBuffer": "sb3_ext.common.buffers",

    # --- continuous control and offline data ---
    "DelayedTD3": "sb3_ext.delayed_td3",
    "DecayingNormalActionNoise": "sb3_ext.noise.processes",
    "DecayingOrnsteinUhlenbeckActionNoise": "sb3_ext.noise.processes",
    "DecayingNoise": "sb3_ext.noise.callbacks",
    "NoiseSigmaLogger": "sb3_ext.noise.callbacks",
    "ChunkWriter": "sb3_ext.data",
    "SyntheticDatasetBuilder": "sb3_ext.data",
    "load_chunks": "sb3_ext.data",
    "iter_chunks": "sb3_ext.data",
    "read_manifest": "sb3_ext.data",
    "OfflineSeed": "sb3_ext.data.callbacks",
    "ChunkRecorder": "sb3_ext.data.callbacks",


    # --- REINFORCE and RLHF ---
    "REINFORCE": "sb3_ext.reinforce",
    "RLHFRewardRelabel": "sb3_ext.rlhf.relabel",
    "RLHFConfig": "sb3_ext.rlhf",
    "ScriptedFeedback": "sb3_ext.rlhf",
    "FileFeedback": "sb3_ext.rlhf",
    "PreferenceFeedback": "sb3_ext.rlhf",
    "preference_from_rater": "sb3_ext.rlhf",

    # --- mixed-algorithm trainer: auxiliary heads, SAC temperature, handoff ---
    "AuxPPO": "sb3_ext.aux_heads",
    "AuxA2C": "sb3_ext.aux_heads",
    "AuxiliaryActorCriticPolicy": "sb3_ext.aux_heads",
    "RLHFEntropyTemperature": "sb3_ext.rlhf.temperature",

    # --- multi-agent ---
    "Swarm2DEnv": "sb3_ext.envs.swarm.swarm2d",
    "AgentSlotsVecEnv": "sb3_ext.multiagent.vec",
    "make_swarm2d_vec_env": "sb3_ext.envs.swarm.vec",
    "make_parallel_vec_env": "sb3_ext.multiagent.vec",
    "TeamSplit": "sb3_ext.multiagent.teams",
    "learn_teams": "sb3_ext.multiagent.teams",
    "SharedActor": "sb3_ext.shared_actor",
    "NCAPolicy": "sb3_ext.nca",
    "MAAC": "sb3_ext.maac",

    # --- Phase 2 ---
    "AssistGridEnv": "sb3_ext.envs.assist.env",
    "AssistWorld": "sb3_ext.envs.assist.world",
    "BoltzmannHumanPrior": "sb3_ext.envs.assist.human_prior",
    "Phase2": "sb3_ext.phase2.phase2",
    "Phase2Config": "sb3_ext.phase2.config",
    "PowerLawPolicy": "sb3_ext.phase2.policies",


}

__all__ = ["__version__", "register_envs", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY_EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sb3_ext' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))


register_envs()
