"""SB3 callbacks shipped with sb3-ext; each also works from an rl-zoo3 YAML ``callback:`` entry.

Every callback of the package is importable from here (the YAML files name them so); the
feature-specific ones live beside their feature (the lattice's in :mod:`sb3_ext.curriculum`).
"""

from sb3_ext.callbacks.artifacts import RunArtifacts
from sb3_ext.callbacks.manifest import ManifestExport, verify
from sb3_ext.callbacks.noise import DecayingNoise, NoiseSigmaLogger
from sb3_ext.callbacks.offline import ChunkRecorder, OfflineSeed
from sb3_ext.callbacks.rlhf import RLHFRewardRelabel
from sb3_ext.callbacks.rlhf_temperature import RLHFEntropyTemperature
from sb3_ext.curriculum.ess import ESSEarlyStopping
from sb3_ext.curriculum.morphology import MorphologyLogger
from sb3_ext.curriculum.transfer import CurriculumTransfer

__all__ = [
    "ChunkRecorder",
    "CurriculumTransfer",
    "DecayingNoise",
    "ESSEarlyStopping",
    "ManifestExport",
    "MorphologyLogger",
    "NoiseSigmaLogger",
    "OfflineSeed",
    "RLHFEntropyTemperature",
    "RLHFRewardRelabel",
    "RunArtifacts",
    "verify",
]
