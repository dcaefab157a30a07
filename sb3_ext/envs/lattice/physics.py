"""Physical constants and rate law of the solid-on-solid growth model (docs/design.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K


@dataclass(frozen=True)
class SOSPhysics:
    """Arrhenius parameters of surface diffusion and the deposition flux.

    The top atom of a column hops to each of its 4 neighbour columns at
    ``nu * exp(-(e_s + n * e_n + e_es * step_down) / (k_B * temperature)) / 4``, where ``n``
    (0..4) counts the neighbour columns at least as high as the hopping atom and ``step_down``
    is 1 when the atom would land below its current level (the Ehrlich-Schwoebel barrier).
    Every column that is not full receives atoms at ``deposition_rate`` (monolayers/s).
    ``nu = 0`` switches diffusion off (pure random deposition).
    """

    temperature: float = 600.0
    deposition_rate: float = 1.0
    nu: float = 1e13
    e_s: float = 1.3
    e_n: float = 0.3
    e_es: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "temperature": self.temperature > 0,
            "deposition_rate": self.deposition_rate > 0,
            "nu": self.nu >= 0,
            "e_s": self.e_s >= 0,
            "e_n": self.e_n >= 0,
            "e_es": self.e_es >= 0,
        }
        expected = {"temperature": "> 0 (kelvin)", "deposition_rate": "> 0", "nu": ">= 0"}
        for name, ok in checks.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)) or not math.isfinite(value) or not ok:
                raise ValueError(f"{name}: expected a finite number {expected.get(name, '>= 0 (eV)')}, got {value!r}")

    def hop_rate(self, n_bonds: int, step_down: bool) -> float:
        """Rate of one hop direction of an atom with ``n_bonds`` lateral neighbours."""
        barrier = self.e_s + n_bonds * self.e_n + (self.e_es if step_down else 0.0)
        return self.nu * math.exp(-barrier / (K_B_EV * self.temperature)) / 4.0

    def packed(self) -> np.ndarray:
        """The layout the compiled kernels read: hop table ``[2n + step_down]``, then the flux."""
        table = [self.hop_rate(n, down) for n in range(5) for down in (False, True)]
        return np.array([*table, self.deposition_rate], dtype=np.float64)
