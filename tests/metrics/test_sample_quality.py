"""Sample-quality metrics against independent computations and numerical trouble."""

import math

import numpy as np
import pytest
import scipy.linalg

from tfgen.data.builtin import eight_gaussians_modes
from tfgen.data.datasets import load_dataset
from tfgen.errors import UserError
from tfgen.metrics.sample_quality import (
    frechet_distance, frechet_distance_from_moments, kernel_inception_distance, mode_coverage,
    precision_recall, unbiased_mmd2)


def random_covariance(rng, dim, rank=None):
    factor = rng.normal(size=(dim, rank or dim))
    return factor @ factor.T / dim


# === Frechet distance ===

def test_frechet_distance_of_diagonal_gaussians_in_closed_form():
    # Commuting covariances: tr((C1 C2)^1/2) = sum sqrt(s1 s2), so FD = |dm|^2 + sum (sqrt s1 - sqrt s2)^2.
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance_from_moments(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for dim in (2, 7, 30):
        c1, c2 = random_covariance(rng, dim), random_covariance(rng, dim)
        m1, m2 = rng.normal(size=dim), rng.normal(size=dim)
        reference = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
        assert frechet_distance_from_moments(m1, c1, m2, c2) == pytest.approx(reference, rel=1e-9)


def test_frechet_distance_of_samples_uses_their_moments():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 4)), 2.0 + 0.5 * rng.normal(size=(300, 4))
    result = frechet_distance(a, b)
    reference = frechet_distance_from_moments(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert result["frechet_distance"] == pytest.approx(reference)
    # The population figure: 4 * 2^2 (means) + 4 * (1 - 0.5)^2 (scales) = 17.
    assert result["frechet_distance"] == pytest.approx(17.0, rel=0.1)
    assert (result["num_real"], result["num_generated"], result["feature_dim"]) == (500, 300, 4)
    assert frechet_distance(a, a)["frechet_distance"] == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_with_singular_covariances_stays_real_and_exact():
    # Rank-1 covariances in 3-D (and fewer samples than dimensions): the general sqrtm
    # goes complex or inexact; the closed form on the shared direction is |dm|^2 + (s1 - s2)^2.
    direction = np.array([1.0, 2.0, 2.0]) / 3.0
    c1, c2 = 4.0 * np.outer(direction, direction), 1.0 * np.outer(direction, direction)
    assert frechet_distance_from_moments(np.zeros(3), c1, np.zeros(3), c2) == pytest.approx((2.0 - 1.0) ** 2, abs=1e-9)
    rng = np.random.default_rng(2)
    few = rng.normal(size=(3, 10))  # rank-2 covariance in 10-D
    distance = frechet_distance(few, few + 1.0)["frechet_distance"]
    assert math.isfinite(distance) and distance == pytest.approx(10.0, rel=1e-9)
    constant = np.ones((50, 3))  # zero covariance
    assert frechet_distance(constant, constant)["frechet_distance"] == 0.0


@pytest.mark.parametrize("real, fake, message", [
    (np.zeros((1, 3)), np.zeros((5, 3)), "real: 1 example"),
    (np.zeros((5, 3)), np.zeros((5, 4)), "differ in dimension: 3 vs 4"),
    (np.zeros(5), np.zeros((5, 1)), r"must be \[N, D\]"),
    (np.zeros((5, 2)), np.array([[0.0, np.nan]] * 5), "generated: 5 non-finite"),
])
def test_bad_features_are_clear_errors(real, fake, message):
    for metric in (frechet_distance, lambda a, b: kernel_inception_distance(a, b, num_subsets=1),
                   lambda a, b: precision_recall(a, b, k=1)):
        with pytest.raises(UserError, match=message):
            metric(real, fake)


# === KID ===

def test_unbiased_mmd_against_a_direct_double_loop():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5

    def k(x, y):
        return (x @ y / 3 + 1.0) ** 3

    within_a = sum(k(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    within_b = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    between = sum(k(x, y) for x in a for y in b) / (7 * 5)
    assert unbiased_mmd2(a, b) == pytest.approx(within_a + within_b - 2 * between, rel=1e-12)


def test_kid_is_zero_on_one_distribution_and_positive_apart():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    same = kernel_inception_distance(a, b)
    # Unbiased: zero within a couple of standard errors (it may be negative).
    assert abs(same["kid"]) < 3 * same["kid_stderr"] + 1e-12
    apart = kernel_inception_distance(a, b + 0.5)
    assert apart["kid"] > 10 * apart["kid_stderr"] > 0
    assert (apart["kid_subsets"], apart["kid_subset_size"]) == (10, 100)
    # Disjoint subsets: the mean of the per-subset estimates, reproducible by seed.
    assert kernel_inception_distance(a, b + 0.5, seed=0) == apart
    whole = kernel_inception_distance(a, b + 0.5, num_subsets=1)
    assert whole["kid"] == pytest.approx(unbiased_mmd2(a, b + 0.5)) and whole["kid_stderr"] is None


def test_kid_needs_two_rows_per_subset():
    with pytest.raises(UserError, match="at least 20"):
        kernel_inception_distance(np.zeros((19, 2)), np.zeros((40, 2)), num_subsets=10)
    with pytest.raises(UserError, match="num_subsets"):
        kernel_inception_distance(np.zeros((19, 2)), np.zeros((40, 2)), num_subsets=0)


# === Precision and recall ===

def test_precision_recall_on_hand_made_points():
    # Real: a 5x5 grid of spacing 1, so with k=1 every real radius is 1. Generated: two
    # pairs 0.4 apart (k=1 radii 0.4), one pair on the grid's corner, one far away.
    grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2)
    fake = np.array([[0.0, 0.0], [0.0, 0.4], [10.0, 10.0], [10.0, 10.4]])
    result = precision_recall(grid, fake, k=1)
    assert result["precision"] == 0.5  # the corner pair is inside the grid's unit balls
    assert result["recall"] == 1 / 25  # only (0, 0) is within 0.4 of a generated point
    # k=2: the generated radii become 14.1 (to the other pair), covering the whole grid;
    # the real radii are 1 still (each grid point has two neighbours at 1... or sqrt 2 at a corner).
    result = precision_recall(grid, fake, k=2)
    assert result == {"precision": 0.5, "recall": 1.0, "k": 2}


def test_precision_recall_of_one_distribution_is_high_and_of_a_collapse_recall_is_low():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    same = precision_recall(real, fake)
    assert same["precision"] > 0.9 and same["recall"] > 0.9 and same["k"] == 3
    collapsed = precision_recall(real, 0.1 * fake)  # all of it inside the real bulk
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.3


def test_precision_recall_needs_more_points_than_k():
    with pytest.raises(UserError, match="at least 4"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
    with pytest.raises(UserError, match="k must be"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 2)), k=0)


# === Mode coverage ===

def test_mode_coverage_of_real_eight_gaussians_data():
    modes, std = eight_gaussians_modes()
    assert std == pytest.approx(0.1 / 0.707)
    test = load_dataset({"name": "eight_gaussians", "num_samples": 4000}).splits["test"].x
    result = mode_coverage(test, modes, std)
    assert result["modes_covered"] == result["num_modes"] == 8
    # 1 - exp(-9/2) of a 2-D Gaussian's mass lies within 3 standard deviations.
    assert result["fraction_near_mode"] == pytest.approx(1 - math.exp(-4.5), abs=0.015)


def test_mode_coverage_of_a_collapsed_and_a_blurred_generator():
    modes, std = eight_gaussians_modes()
    rng = np.random.default_rng(6)
    collapsed = modes[[0, 3]][rng.integers(2, size=1000)] + std * rng.normal(size=(1000, 2))
    result = mode_coverage(collapsed, modes, std)
    assert result["modes_covered"] == 2 and result["samples_per_mode"][0] > 400
    blurred = rng.normal(size=(1000, 2))
    assert mode_coverage(blurred, modes, std)["fraction_near_mode"] < 0.5
    assert mode_coverage(collapsed, modes, std, min_count=600)["modes_covered"] == 0
    with pytest.raises(UserError, match="modes must be"):
        mode_coverage(collapsed, modes[:, :1], std)
