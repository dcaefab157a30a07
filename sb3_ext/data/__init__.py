"""Offline datasets as chunk files: write them, build them from a policy, stream them into replay buffers
(:class:`OfflineSeed`) and record them from training (:class:`ChunkRecorder`)."""

from sb3_ext.data.builder import SyntheticDatasetBuilder
from sb3_ext.data.callbacks import ChunkRecorder, OfflineSeed
from sb3_ext.data.format import FORMAT_VERSION, read_manifest
from sb3_ext.data.reader import iter_chunks, load_chunks
from sb3_ext.data.writer import ChunkWriter

__all__ = [
    "FORMAT_VERSION",
    "ChunkRecorder",
    "ChunkWriter",
    "OfflineSeed",
    "SyntheticDatasetBuilder",
    "iter_chunks",
    "load_chunks",
    "read_manifest",
]
