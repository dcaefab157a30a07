"""The SOS physics obeys detailed balance: with deposition off, a closed lattice samples the
Boltzmann distribution ``P(h) ~ exp(e_n * bonds(h) / k_B T)``; an annealed rough film smooths;
random deposition (hops off) gives ``W^2 = F t``.

The exact stationary distribution is computed from the plain-Python rate law of
``lattice_reference`` by enumerating every state of a tiny closed system and solving the master
equation, so the engine is checked against a value it shares no code with."""

import itertools

import numpy as np
import pytest

from sb3_ext.envs.lattice.engine import LatticeKMC
from sb3_ext.envs.lattice.physics import SOSPhysics
from tests.lattice_reference import K_B, reference_rates

# 3x3 periodic lattice, 4 atoms, heights capped at 3: a few hundred states, fast mixing.
SIDE, NZ, ATOMS = 3, 3, 4
# softer barriers than the defaults so bonded and free atoms, level and interlayer hops all mix
CLOSED = dict(temperature=600.0, deposition_rate=0.0, nu=1e13, e_s=1.2, e_n=0.1, e_es=0.1)
DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def closed_states() -> list[tuple[int, ...]]:
    """Every height map (row-major tuple) of the closed system."""
    return [s for s in itertools.product(range(NZ + 1), repeat=SIDE * SIDE) if sum(s) == ATOMS]


def bonds(state: tuple[int, ...]) -> int:
    """Lateral bonds: over each neighbour pair (counted once), ``min`` of the two heights."""
    h = np.array(state).reshape(SIDE, SIDE)
    return int(np.minimum(h, np.roll(h, 1, axis=0)).sum() + np.minimum(h, np.roll(h, 1, axis=1)).sum())


def boltzmann(states, e_n: float, temperature: float) -> np.ndarray:
    weights = np.exp(np.array([bonds(s) for s in states]) * e_n / (K_B * temperature))
    return weights / weights.sum()


def exact_stationary(states, rates_of) -> np.ndarray:
    """Stationary distribution of the continuous-time chain whose event rates are ``rates_of(h)``."""
    index = {s: k for k, s in enumerate(states)}
    generator = np.zeros((len(states), len(states)))
    for s, k in index.items():
        h = np.array(s).reshape(SIDE, SIDE)
        rates = rates_of(h)
        for x, y, d in zip(*np.nonzero(rates[:, :, :4]), strict=False):
            moved = h.copy()
            dx, dy = DIRECTIONS[d]
            moved[x, y] -= 1
            moved[(x + dx) % SIDE, (y + dy) % SIDE] += 1
            generator[k, index[tuple(moved.reshape(-1))]] += rates[x, y, d]
        generator[k, k] = -generator[k].sum()
    # solve pi Q = 0 with sum(pi) = 1 (least squares on the stacked system)
    system = np.vstack([generator.T, np.ones(len(states))])
    rhs = np.zeros(len(states) + 1)
    rhs[-1] = 1.0
    return np.linalg.lstsq(system, rhs, rcond=None)[0]


def step_down_only_rates(h: np.ndarray) -> np.ndarray:
    """The rule this replaced, for contrast: ``e_es`` charged on step-down hops only."""
    rates = reference_rates(h, NZ, **CLOSED)
    kt = K_B * CLOSED["temperature"]
    for x, y, d in zip(*np.nonzero(rates[:, :, :4]), strict=False):
        dx, dy = DIRECTIONS[d]
        if h[(x + dx) % SIDE, (y + dy) % SIDE] + 1 > h[x, y]:  # a climb: the old rule charged no barrier
            rates[x, y, d] *= np.exp(CLOSED["e_es"] / kt)
    return rates


def time_weighted_occupancy(n_events: int, seed: int, states) -> np.ndarray:
    """Share of physical time the engine spends in each state over ``n_events`` events."""
    index = {s: k for k, s in enumerate(states)}
    engine = LatticeKMC(SIDE, SIDE, NZ, SOSPhysics(**CLOSED), seed=seed)
    start = np.zeros((SIDE, SIDE), dtype=np.int64)
    start.reshape(-1)[:ATOMS] = 1
    engine.reset(start)
    occupancy = np.zeros(len(states))
    for _ in range(n_events):
        state = index[tuple(engine.heights.reshape(-1))]
        before = engine.time
        engine.run(1)  # the waiting time drawn for this event is spent in ``state``
        occupancy[state] += engine.time - before
    return occupancy / occupancy.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def test_rate_law_satisfies_detailed_balance_exactly():
    states = closed_states()
    target = boltzmann(states, CLOSED["e_n"], CLOSED["temperature"])
    exact = exact_stationary(states, lambda h: reference_rates(h, NZ, **CLOSED))
    np.testing.assert_allclose(exact, target, atol=1e-10)
    # the rule this replaced (barrier on step-downs only) is far from Boltzmann: the check has teeth
    assert total_variation(exact_stationary(states, step_down_only_rates), target) > 0.1


def test_closed_system_visits_states_with_boltzmann_frequencies():
    """Time-weighted state frequencies of the engine converge to Boltzmann like sampling noise."""
    states = closed_states()
    target = boltzmann(states, CLOSED["e_n"], CLOSED["temperature"])
    short = np.mean([total_variation(time_weighted_occupancy(12_500, seed, states), target) for seed in range(4)])
    long = total_variation(time_weighted_occupancy(200_000, 99, states), target)
    # 16x the samples: noise shrinks ~4x; allow for run-to-run spread
    assert long < 0.5 * short, (short, long)
    assert long < 0.04, long


def test_annealed_rough_film_smooths():
    rng = np.random.default_rng(0)
    side = 16
    engine = LatticeKMC(side, side, 30, SOSPhysics(deposition_rate=0.0), seed=1)
    engine.reset(rng.integers(5, 15, size=(side, side)))
    atoms = engine.heights.sum()
    w0 = engine.roughness
    widths = []
    for n_events in (2_000, 20_000, 200_000, 200_000, 200_000):
        engine.run(n_events)
        widths.append(engine.roughness)
    assert engine.event_counts["deposition"] == 0 and engine.heights.sum() == atoms
    assert w0 > widths[0] > widths[1], (w0, widths)
    # it settles near equilibrium (islands on a flat layer) and stays there instead of roughening again
    assert max(widths[1:]) < 0.35 * w0, (w0, widths)


@pytest.mark.parametrize("t_end", [2.0, 8.0])
def test_random_deposition_width_squared_is_flux_times_time(t_end):
    """Hops off: each column is an independent Poisson count of mean F t, so E[W^2] = F t (1 - 1/N)."""
    side, flux, n_runs = 8, 1.5, 300
    w2 = np.empty(n_runs)
    for seed in range(n_runs):
        engine = LatticeKMC(side, side, 200, SOSPhysics(nu=0.0, deposition_rate=flux), seed=seed)
        engine.run_until(t_end)
        w2[seed] = engine.roughness**2
    expected = flux * t_end * (1 - 1 / side**2)
    sem = w2.std(ddof=1) / np.sqrt(n_runs)
    assert abs(w2.mean() - expected) < 4 * sem, (w2.mean(), expected, sem)
