"""SB3 callbacks shipped with sb3-ext; each also works from an rl-zoo3 YAML ``callback:`` entry."""

from sb3_ext.callbacks.artifacts import RunArtifacts
from sb3_ext.callbacks.curriculum import CurriculumTransfer
from sb3_ext.callbacks.ess import ESSEarlyStopping
from sb3_ext.callbacks.manifest import ManifestExport, verify
from sb3_ext.callbacks.morphology import MorphologyLogger
from sb3_ext.callbacks.noise import DecayingNoise, NoiseSigmaLogger
from sb3_ext.callbacks.offline import ChunkRecorder, OfflineSeed
from sb3_ext.callbacks.rlhf import RLHFRewardRelabel
from sb3_ext.callbacks.rlhf_temperature import RLHFEntropyTemperature

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
