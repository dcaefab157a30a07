"""Plain-Python reference for the lattice tests: the SOS rate law written from its physics, with
loops and no shared code with the engine, so tests compare against it."""

from __future__ import annotations

import math

import numpy as np

K_B = 8.617333262e-5  # eV/K


def reference_rates(
    heights: np.ndarray,
    nz: int,
    temperature: float = 600.0,
    deposition_rate: float = 1.0,
    nu: float = 1e13,
    e_s: float = 1.3,
    e_n: float = 0.3,
    e_es: float = 0.1,
) -> np.ndarray:
    """Rates of every event, shape (nx, ny, 5): hops +x, -x, +y, -y, then deposition."""
    nx, ny = heights.shape
    out = np.zeros((nx, ny, 5))
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    for x in range(nx):
        for y in range(ny):
            h = int(heights[x, y])
            if h < nz:
                out[x, y, 4] = deposition_rate
            if h == 0:
                continue
            neighbours = [int(heights[(x + dx) % nx, (y + dy) % ny]) for dx, dy in directions]
            n = sum(1 for hn in neighbours if hn >= h)
            for d, hn in enumerate(neighbours):
                if hn == nz:
                    continue
                # the Ehrlich-Schwoebel barrier is paid by every hop that changes level, up or down
                barrier = e_s + n * e_n + (e_es if hn + 1 != h else 0.0)
                out[x, y, d] = nu * math.exp(-barrier / (K_B * temperature)) / 4
    return out


def enumerated_ess(rates: np.ndarray, biases: np.ndarray) -> float:
    """``1 / sum_e p(e)^2 / P(e)`` over every event, ``p ~ rate``, ``P ~ rate * exp(bias)``."""
    g = rates.reshape(-1)
    b = biases.reshape(-1)
    mask = g > 0
    p = g[mask] / g[mask].sum()
    q = g[mask] * np.exp(b[mask])
    q = q / q.sum()
    return float(1.0 / np.sum(p * p / q))


def bias_grid(shape: tuple[int, int], columns: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """Per-event bias array (nx, ny, 5) with ``biases[a]`` on flat column ``columns[a]``."""
    grid = np.zeros((shape[0] * shape[1], 5))
    grid[np.asarray(columns)] = biases
    return grid.reshape(shape[0], shape[1], 5)
