"""SB3 callbacks shipped with sb3-ext; each also works from an rl-zoo3 YAML ``callback:`` entry.

Every callback of the package is importable from here (the YAML files name them so). The ones
that belong to a feature live beside it: the lattice's in :mod:`sb3_ext.curriculum`, RLHF's in
:mod:`sb3_ext.rlhf`, offline data's in :mod:`sb3_ext.data`, decaying noise's in
:mod:`sb3_ext.noise`. Those here serve any run (artifacts, run manifest).
"""

from sb3_ext.callbacks.artifacts import RunArtifacts
from sb3_ext.callbacks.manifest import ManifestExport, verify
from sb3_ext.curriculum.ess import ESSEarlyStopping
from sb3_ext.curriculum.morphology import MorphologyLogger
from sb3_ext.curriculum.transfer import CurriculumTransfer
from sb3_ext.data.callbacks import ChunkRecorder, OfflineSeed
from sb3_ext.noise.callbacks import DecayingNoise, NoiseSigmaLogger
from sb3_ext.rlhf.relabel import RLHFRewardRelabel
from sb3_ext.rlhf.temperature import RLHFEntropyTemperature

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
