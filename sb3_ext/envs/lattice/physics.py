"""Physical constants and rate law of the solid-on-solid growth model."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K


@dataclass(frozen=True)
class SOSPhysics:
    """Arrhenius parameters of surface diffusion and the deposition flux.

    The top atom of a column hops to each of its 4 neighbour columns at
    ``nu * exp(-(e_s + n * e_n + e_es * interlayer) / (k_B * temperature)) / 4``, where ``n``
    (0..4) counts the neighbour columns at least as high as the hopping atom and ``interlayer``
    is 1 when the atom would land on another level than its own, down *or up* (the
    Ehrlich-Schwoebel barrier sits on the transition state at a step edge, so a hop and its
    reverse both cross it).

    Detailed balance: removing the top atom of a column breaks exactly its ``n`` lateral bonds,
    and the reverse hop starts from the ``n'`` bonds the atom made where it landed, so
    ``rate(forward) / rate(reverse) = exp((n' - n) e_n / k_B T)`` whenever both hops carry the same
    extra barrier. Without deposition the dynamics therefore samples
    ``P(h) ~ exp(e_n * bonds(h) / k_B T)`` with ``bonds(h) = sum over neighbour pairs of
    min(h_i, h_j)``; charging ``e_es`` on step-downs only would break this and roughen an annealed
    film without bound.

    Every column that is not full receives atoms at ``deposition_rate`` (monolayers/s; 0 gives a
    closed system). ``nu = 0`` switches diffusion off (pure random deposition).
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
            "deposition_rate": self.deposition_rate >= 0,
            "nu": self.nu >= 0,
            "e_s": self.e_s >= 0,
            "e_n": self.e_n >= 0,
            "e_es": self.e_es >= 0,
        }
        expected = {"temperature": "> 0 (kelvin)", "deposition_rate": ">= 0 (monolayers/s)", "nu": ">= 0"}
        for name, ok in checks.items():
            value = getattr(self, name)
            # numbers.Real takes numpy scalars too (np.float32(600) is not a Python float)
            if (
                not (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)))
                or not math.isfinite(value)
                or not ok
            ):
                raise ValueError(f"{name}: expected a finite number {expected.get(name, '>= 0 (eV)')}, got {value!r}")
            object.__setattr__(self, name, float(value))

    def hop_rate(self, n_bonds: int, interlayer: bool) -> float:
        """Rate of one hop direction of an atom with ``n_bonds`` lateral neighbours that lands on
        another level (``interlayer``) or on its own."""
        barrier = self.e_s + n_bonds * self.e_n + (self.e_es if interlayer else 0.0)
        return self.nu * math.exp(-barrier / (K_B_EV * self.temperature)) / 4.0

    def packed(self) -> np.ndarray:
        """The layout the compiled kernels read: hop table ``[2n + interlayer]``, then the flux."""
        table = [self.hop_rate(n, interlayer) for n in range(5) for interlayer in (False, True)]
        return np.array([*table, self.deposition_rate], dtype=np.float64)
