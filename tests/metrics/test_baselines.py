"""Density baselines: the bits/dim formula on a known case, and a fit that beats it."""

import math

import numpy as np
import pytest

from tfgen.data import DataSpec, load_dataset
from tfgen.metrics.baselines import bits_per_dim_from_density, dequantized, gmm_baseline, kde_baseline


def test_uniform_density_on_the_cube_is_log2_levels():
    spec = DataSpec((8, 8, 1), kind="image", levels=17)
    bits = bits_per_dim_from_density(np.zeros(5), spec)  # log p_u = 0 everywhere
    np.testing.assert_allclose(bits, math.log2(17), rtol=1e-12)


def test_continuous_formula_has_no_level_term():
    spec = DataSpec((2,))
    # standard normal at the origin: log p = -log(2 pi)
    np.testing.assert_allclose(bits_per_dim_from_density([-math.log(2 * math.pi)], spec), math.log2(2 * math.pi) / 2)


def test_dequantized_points_stay_in_their_bins_and_are_seeded():
    spec = DataSpec((3,), levels=4)
    x = np.array([[0, 1, 3], [2, 2, 0]], np.float32)
    u = dequantized(x, spec, seed=(0, 1))
    np.testing.assert_array_equal(np.floor(u * 4), x)
    np.testing.assert_array_equal(u, dequantized(x, spec, seed=(0, 1)))
    assert not np.array_equal(u, dequantized(x, spec, seed=(0, 2)))


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits"})


def test_gmm_beats_the_uniform_density_on_digits(digits):
    result = gmm_baseline(digits, components=(1, 3))
    assert set(result["validation_bits_per_dim"]) == {1, 3}
    assert result["choice"] == min(result["validation_bits_per_dim"], key=result["validation_bits_per_dim"].get)
    assert result["test_bits_per_dim"] < math.log2(17) - 0.5


def test_kde_picks_a_bandwidth_on_validation(digits):
    result = kde_baseline(digits, bandwidths=(0.01, 0.1))
    assert result["choice"] == 0.1  # 0.01 is far too narrow for 64-dim data
    assert result["test_bits_per_dim"] < math.log2(17)
