"""KMC engine against independent values: random-deposition statistics, the rate law written
from docs/design.md in plain Python, chi-square tests of event selection, exact ESS by enumeration."""

import copy

import numpy as np
import pytest
from scipy import stats

from sb3_ext.envs.lattice.engine import LatticeKMC
from sb3_ext.envs.lattice.physics import SOSPhysics
from tests.lattice_reference import bias_grid, enumerated_ess, reference_rates
import itertools

# Softer barriers than the defaults: free and bonded hops, step-downs and deposition then all have
# comparable probabilities, so the tests exercise every kind of event on a tiny lattice.
MIXED = dict(temperature=600.0, deposition_rate=1.0, nu=1e13, e_s=1.44, e_n=0.1, e_es=0.05)


def random_heights(rng, shape, nz):
    return rng.integers(0, nz + 1, size=shape)


def test_random_deposition_width_matches_binomial_formula():
    """Hops off: after N depositions on L^2 columns, E[W^2] = theta (1 - 1/L^2), theta = N/L^2."""
    side, theta, n_runs = 6, 4, 400
    n_cols = side * side
    w2 = np.empty(n_runs)
    for seed in range(n_runs):
        engine = LatticeKMC(side, side, 40, SOSPhysics(nu=0.0), seed=seed)
        assert engine.run(theta * n_cols) == theta * n_cols
        assert engine.event_counts["deposition"] == theta * n_cols
        w2[seed] = engine.roughness**2
    expected = theta * (1 - 1 / n_cols)
    sem = w2.std(ddof=1) / np.sqrt(n_runs)
    assert abs(w2.mean() - expected) < 4 * sem, (w2.mean(), expected, sem)


def test_selection_frequencies_and_clock_match_rates_in_frozen_configuration():
    rng = np.random.default_rng(3)
    nz = 4
    heights = random_heights(rng, (4, 5), nz)
    heights[0, 0], heights[1, 1] = nz, 0  # a full column and a bare one
    engine = LatticeKMC(4, 5, nz, SOSPhysics(**MIXED), seed=11)
    engine.reset(heights)
    rates = reference_rates(heights, nz, **MIXED)
    total = rates.sum()
    assert engine.total_rate == pytest.approx(total, rel=1e-12)

    n_draws = 200_000
    cols, slots, dts = engine.sample_events(n_draws)
    observed = np.bincount(cols * 5 + slots, minlength=rates.size)
    expected = rates.reshape(-1) / total * n_draws
    assert observed[expected == 0].sum() == 0  # impossible events never drawn
    keep = expected > 0
    chi2 = stats.chisquare(observed[keep], expected[keep])
    assert chi2.pvalue > 1e-3, chi2
    # mean waiting time 1/R (exponential: sd of the mean = 1/(R sqrt(n)))
    assert abs(dts.mean() * total - 1.0) < 4 / np.sqrt(n_draws)
    # the frozen configuration really stayed frozen
    np.testing.assert_array_equal(engine.heights, heights)


def test_biased_selection_follows_rate_times_exp_bias():
    rng = np.random.default_rng(5)
    nz = 4
    heights = random_heights(rng, (4, 4), nz)
    engine = LatticeKMC(4, 4, nz, SOSPhysics(**MIXED), seed=2)
    engine.reset(heights)
    columns = np.array([1, 6, 11])
    biases = rng.uniform(-2, 2, size=(3, 5))
    weights = (reference_rates(heights, nz, **MIXED) * np.exp(bias_grid((4, 4), columns, biases))).reshape(-1)
    n_draws = 200_000
    cols, slots, _ = engine.sample_events(n_draws, columns, biases)
    observed = np.bincount(cols * 5 + slots, minlength=weights.size)
    keep = weights > 0
    chi2 = stats.chisquare(observed[keep], weights[keep] / weights.sum() * n_draws)
    assert chi2.pvalue > 1e-3, chi2
    # biases are removed afterwards: the tree is back to physical rates
    assert engine.total_rate == pytest.approx(reference_rates(heights, nz, **MIXED).sum(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_rates_equal_rates_recomputed_from_scratch(seed):
    rng = np.random.default_rng(seed)
    nx, ny, nz = 5, 4, 30
    engine = LatticeKMC(nx, ny, nz, SOSPhysics(**MIXED), seed=seed)
    engine.reset(random_heights(rng, (nx, ny), 3))
    initial_atoms = engine.heights.sum()
    for _ in range(40):
        if rng.random() < 0.5:
            engine.run(int(rng.integers(1, 30)))
        else:
            columns = rng.choice(nx * ny, size=3, replace=False)
            engine.biased_step(columns, rng.uniform(-3, 3, size=(3, 5)), int(rng.integers(1, 30)))
        heights = engine.heights
        expected = reference_rates(heights, nz, **MIXED)
        np.testing.assert_allclose(engine.event_rates, expected, rtol=1e-12, atol=0)
        assert engine.total_rate == pytest.approx(expected.sum(), rel=1e-12)
        # atoms are conserved and the running morphology sums agree with the heights
        assert heights.sum() == initial_atoms + engine.event_counts["deposition"]
        assert heights.min() >= 0 and heights.max() <= nz
        assert engine.roughness == pytest.approx(heights.std(), abs=1e-12)
        assert engine.coverage == (heights > 0).mean()
        assert engine.mean_height == pytest.approx(heights.mean())
    counts = engine.event_counts
    assert sum(counts.values()) == engine.n_events
    assert all(counts[kind] > 0 for kind in ("hop_level", "hop_down", "hop_up"))


def test_same_seed_reproduces_a_run_bit_for_bit():
    def trajectory(seed):
        engine = LatticeKMC(6, 6, 20, SOSPhysics(**MIXED), seed=seed)
        engine.run(300)
        engine.biased_step([0, 7, 20], np.full((3, 5), 0.7), 50)
        engine.run_until(engine.time + 0.5)
        return engine.heights, engine.time, engine.event_counts

    (h1, t1, c1), (h2, t2, c2), (h3, _, _) = trajectory(9), trajectory(9), trajectory(10)
    np.testing.assert_array_equal(h1, h2)
    assert t1 == t2 and c1 == c2
    assert not np.array_equal(h1, h3)


def test_zero_bias_step_is_exact_kmc_with_ess_one():
    plain = LatticeKMC(6, 6, 30, seed=4)
    plain.run(100)
    biased = copy.deepcopy(plain)
    plain.run(500)
    done, ess = biased.biased_step([3, 14, 30, 35], np.zeros((4, 5)), 500)
    assert done == 500 and ess == 1.0
    np.testing.assert_array_equal(plain.heights, biased.heights)
    assert plain.time == biased.time


def test_biased_step_ess_matches_enumeration_and_is_the_mean_over_events():
    """ESS of an event is 1/sum p^2/P over every event; a k-event step reports the mean."""
    engine = LatticeKMC(4, 5, 5, SOSPhysics(**MIXED), seed=8)
    engine.run(60)
    columns = np.array([0, 9, 17])
    biases = np.random.default_rng(0).uniform(-3, 3, size=(3, 5))
    replay = copy.deepcopy(engine)

    per_event = []
    for _ in range(4):
        rates = reference_rates(replay.heights, 5, **MIXED)
        expected = enumerated_ess(rates, bias_grid((4, 5), columns, biases))
        done, ess = replay.biased_step(columns, biases, 1)
        assert done == 1
        assert ess == pytest.approx(expected, rel=1e-10)
        per_event.append(expected)
    done, ess = engine.biased_step(columns, biases, 4)
    assert done == 4 and ess == pytest.approx(np.mean(per_event), rel=1e-10)
    np.testing.assert_array_equal(engine.heights, replay.heights)

    # ESS falls as the same biases are scaled up
    scaled = []
    for scale in (0.0, 0.5, 1.0, 2.0):
        probe = copy.deepcopy(engine)
        scaled.append(probe.biased_step(columns, scale * biases, 1)[1])
    assert scaled[0] == 1.0 and all(a > b for a, b in itertools.pairwise(scaled))


def test_run_until_stops_exactly_at_the_time_with_poisson_depositions():
    side, t_end = 10, 30.0
    engine = LatticeKMC(side, side, 100, SOSPhysics(nu=0.0), seed=1)
    engine.run_until(t_end)
    assert engine.time == t_end
    mean = side * side * t_end  # deposition is a Poisson process of rate F per column
    assert abs(engine.event_counts["deposition"] - mean) < 4 * np.sqrt(mean)


def test_full_lattice_stops_the_run():
    engine = LatticeKMC(3, 3, 3, seed=0)
    executed = engine.run(10_000)
    assert executed < 10_000
    assert engine.is_full and engine.total_rate == 0.0
    np.testing.assert_array_equal(engine.heights, np.full((3, 3), 3))
    assert engine.run(10) == 0 and engine.run_until(engine.time + 1.0) == 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(nx=2, ny=4, nz=4), "nx"),
        (dict(nx=4, ny=4.0, nz=4), "ny"),
        (dict(nx=4, ny=4, nz=True), "nz"),
    ],
)
def test_bad_sizes_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LatticeKMC(**kwargs)


@pytest.mark.parametrize(
    "field, value", [("temperature", 0.0), ("deposition_rate", -1.0), ("nu", -1.0), ("e_n", float("nan"))]
)
def test_bad_physics_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SOSPhysics(**{field: value})


def test_bad_heights_and_columns_are_rejected():
    engine = LatticeKMC(4, 4, 3)
    with pytest.raises(ValueError, match="heights"):
        engine.reset(np.full((4, 4), 4))
    with pytest.raises(ValueError, match="columns"):
        engine.biased_step([1, 1], np.zeros((2, 5)))
