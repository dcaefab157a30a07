"""Height maps as text (``render_mode="ansi"``, the demo) and as an image (``"rgb_array"``)."""

from __future__ import annotations

import numpy as np

# One character per height level, from bare substrate to tall columns.
_LEVELS = " .:-=+*#%@"


def ascii_heights(heights: np.ndarray, nz: int) -> str:
    """One line per row of x, one character per column: digits when nz <= 9, shades otherwise."""
    if nz <= 9:
        rows = ["".join(str(int(h)) for h in row) for row in heights]
    else:
        scaled = np.minimum((heights * (len(_LEVELS) - 1)) // nz, len(_LEVELS) - 1)
        rows = ["".join(_LEVELS[int(s)] for s in row) for row in scaled]
    return "\n".join(rows)


def grey_heights(heights: np.ndarray, nz: int) -> np.ndarray:
    """RGB image, one grey pixel per column: black for bare substrate, white for a full column."""
    level = (np.asarray(heights) * 255 // nz).astype(np.uint8)
    return np.repeat(level[..., None], 3, axis=-1)
