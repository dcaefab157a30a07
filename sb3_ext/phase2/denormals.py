"""Flush-to-zero of denormal floats around Phase 2's updates.

Phase 2's gradients and Adam moments of rarely active units (one-hot inputs of cells the robot
seldom sees, saturated sigmoids) decay into the denormal range (below 1.2e-38 in float32), where
x86 arithmetic is many times slower: on the rocks map a trained model's fused AdamW step took
0.7 ms with denormals and 0.23 ms with them flushed. Flushed values are below anything an update
can move a float32 weight by (Adam divides by sqrt(v) + 1e-8), so the weights come out the same.
torch's switch is process-wide and has no getter, so the current mode is read off an arithmetic
result and restored afterwards: code outside the update keeps its own setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch as th

_DENORMAL = 1e-39  # below float32's smallest normal number, above its smallest denormal


def flushing_denormals() -> bool:
    """Whether torch's CPU arithmetic currently flushes denormals to zero."""
    return float(th.tensor([_DENORMAL]) * 1.0) == 0.0


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush denormals to zero inside the block (where the CPU supports it), then restore the mode."""
    before = flushing_denormals()
    if not before:
        th.set_flush_denormal(True)
    try:
        yield
    finally:
        if not before:
            th.set_flush_denormal(False)
