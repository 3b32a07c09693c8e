"""Sample-quality metrics on features: Frechet distance, KID, precision/recall, mode coverage.

Every function takes two `[N, D]` arrays of features (of real and generated examples,
in that order, e.g. from a `tfgen.metrics.features` network) and returns plain floats in
a dict, so the numbers go straight into a table or JSON. Computation is in float64 numpy;
features must be finite and each set large enough for the estimate, or a `UserError`
says what is wrong.

Frechet distance (Heusel et al. 2017, arXiv:1706.08500) between the Gaussians fitted to
the two sets (means m_r, m_g; covariances C_r, C_g, normalized by N - 1):

    FD = |m_r - m_g|^2 + tr(C_r + C_g - 2 (C_r C_g)^(1/2)).

tr((C_r C_g)^(1/2)) is the sum of the square roots of the eigenvalues of the symmetric
positive semi-definite C_r^(1/2) C_g C_r^(1/2), computed with `eigh`: it stays real and
finite when a covariance is singular (fewer examples than dimensions, constant
features), where a general matrix square root (`scipy.linalg.sqrtm`) can turn complex.
FD is biased upwards at small N: compare figures at the same sample sizes.

Kernel inception distance (Binkowski et al. 2018, arXiv:1801.01401): the unbiased MMD^2
with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3,

    MMD^2 = sum_{i != j} k(r_i, r_j) / (m (m - 1)) + sum_{i != j} k(g_i, g_j) / (n (n - 1))
            - 2 sum_{i, j} k(r_i, g_j) / (m n),

estimated on `num_subsets` disjoint random subsets of each set (the block estimator TF-GAN
uses): the mean over subsets, and its standard error std / sqrt(num_subsets). The
subsets are disjoint, so their estimates are independent and the standard error is
honest; it can be negative (unbiased) when the sets come from one distribution.

Precision and recall (Kynkaanniemi et al. 2019, arXiv:1904.06991): each set's manifold is
the union of balls around its points, a point's radius the distance to its k-th nearest
neighbour in its own set. Precision is the fraction of generated points inside the real
manifold, recall the fraction of real points inside the generated one.

Mode coverage (the 8-Gaussians toy; Srivastava et al. 2017's VEEGAN protocol): each
sample belongs to its nearest mode and is "near" when within `num_std` standard deviations
(Euclidean) of it; a mode is covered when at least `min_count` near samples belong to it.
For a 2-D isotropic Gaussian P(|x - mu| <= 3 sigma) = 1 - exp(-9/2) = 0.989, what real data
scores.

Example:

    real, fake = net.features(test_x, spec), net.features(samples, spec)
    frechet_distance(real, fake)["frechet_distance"]
    kernel_inception_distance(real, fake)          # {"kid", "kid_stderr", ...}
    precision_recall(real, fake, k=3)              # {"precision", "recall", "k"}
"""

import math

import numpy as np

from tfgen.errors import UserError

DEFAULT_K = 3
DEFAULT_KID_SUBSETS = 10
MODE_NUM_STD = 3.0


def _features(x, what, min_rows=2):
    """`x` as a finite float64 `[N, D]` array of at least `min_rows` rows."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise UserError(f"{what}: features must be [N, D], got shape {list(x.shape)}")
    if len(x) < min_rows:
        raise UserError(f"{what}: {len(x)} example(s) are too few; this estimate needs at least {min_rows}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise UserError(f"{what}: {int(bad.sum())} non-finite feature value(s), first in row {int(np.argmax(bad.any(axis=1)))}")
    return x


def _pair(real, fake, min_rows=2):
    real, fake = _features(real, "real", min_rows), _features(fake, "generated", min_rows)
    if real.shape[1] != fake.shape[1]:
        raise UserError(f"real and generated features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    return real, fake


def _psd_eigh(matrix):
    """Eigenvalues and vectors of a symmetric PSD matrix, those below the numerical rank
    tolerance (numpy's `matrix_rank`: largest * D * eps) set to 0: rounding leaves a singular
    covariance eigenvalues of +-1e-16, whose square roots would add 1e-8 each."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    tolerance = np.abs(values).max(initial=0.0) * len(values) * np.finfo(np.float64).eps
    return np.where(values > tolerance, values, 0.0), vectors


def _psd_sqrt(matrix):
    """The symmetric square root of a symmetric PSD matrix."""
    values, vectors = _psd_eigh(matrix)
    return (vectors * np.sqrt(values)) @ vectors.T


def frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b):
    """|m_a - m_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)) of two Gaussians (see the module doc).

    Args:
      mean_a, mean_b: `[D]` means.
      cov_a, cov_b: `[D, D]` symmetric positive semi-definite covariances.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    dim = mean_a.shape[0]
    for name, m in (("mean_b", mean_b), ("cov_a", cov_a), ("cov_b", cov_b)):
        if m.shape != ((dim,) if name.startswith("mean") else (dim, dim)):
            raise UserError(f"frechet_distance: {name} has shape {list(m.shape)}, the first mean {dim} dimensions")
    for name, m in (("mean_a", mean_a), ("mean_b", mean_b), ("cov_a", cov_a), ("cov_b", cov_b)):
        if not np.all(np.isfinite(m)):
            raise UserError(f"frechet_distance: {name} has non-finite values")
    root_a = _psd_sqrt(cov_a)
    trace_sqrt = float(np.sum(np.sqrt(_psd_eigh(root_a @ cov_b @ root_a)[0])))
    distance = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    # Rounding can leave a distance of identical Gaussians a hair below zero.
    return max(distance, 0.0)


def frechet_distance(real, fake):
    """Frechet distance between Gaussians fitted to two feature sets.

    Args:
      real, fake: `[N, D]` and `[M, D]` features, N, M >= 2.

    Returns:
      {"frechet_distance", "num_real", "num_generated", "feature_dim"}.
    """
    real, fake = _pair(real, fake)
    distance = frechet_distance_from_moments(real.mean(0), np.cov(real, rowvar=False).reshape(real.shape[1], -1),
                                             fake.mean(0), np.cov(fake, rowvar=False).reshape(fake.shape[1], -1))
    return {"frechet_distance": distance, "num_real": len(real), "num_generated": len(fake),
            "feature_dim": real.shape[1]}


def polynomial_kernel(a, b, degree=3, coef0=1.0):
    """(a.b / D + coef0)^degree for every pair of rows: `[N, M]`."""
    return (a @ b.T / a.shape[1] + coef0) ** degree


def unbiased_mmd2(real, fake, degree=3, coef0=1.0):
    """The unbiased MMD^2 estimate of two feature sets with the polynomial kernel (module doc)."""
    m, n = len(real), len(fake)
    k_rr = polynomial_kernel(real, real, degree, coef0)
    k_gg = polynomial_kernel(fake, fake, degree, coef0)
    k_rg = polynomial_kernel(real, fake, degree, coef0)
    return float((k_rr.sum() - np.trace(k_rr)) / (m * (m - 1)) + (k_gg.sum() - np.trace(k_gg)) / (n * (n - 1))
                 - 2.0 * k_rg.mean())


def kernel_inception_distance(real, fake, num_subsets=DEFAULT_KID_SUBSETS, seed=0):
    """KID: unbiased cubic-kernel MMD^2, mean and standard error over disjoint subsets.

    Args:
      real, fake: `[N, D]` and `[M, D]` features.
      num_subsets: disjoint random subsets of each set; each needs >= 2 rows of both, so
        N and M must be >= 2 * num_subsets. 1 gives the estimate on the whole sets and
        no standard error (None).
      seed: seeds the random assignment of rows to subsets.

    Returns:
      {"kid", "kid_stderr", "kid_subsets", "kid_subset_size"} (the size of the smaller
      set's subsets; subsets of one set differ in size by at most one row).
    """
    if not isinstance(num_subsets, (int, np.integer)) or num_subsets < 1:
        raise UserError(f"kernel_inception_distance: num_subsets must be an integer >= 1, got {num_subsets!r}")
    real, fake = _pair(real, fake, min_rows=2 * num_subsets)
    rng = np.random.default_rng(seed)
    real_parts = np.array_split(rng.permutation(len(real)), num_subsets)
    fake_parts = np.array_split(rng.permutation(len(fake)), num_subsets)
    estimates = np.array([unbiased_mmd2(real[r], fake[g]) for r, g in zip(real_parts, fake_parts)])
    stderr = float(estimates.std(ddof=1) / math.sqrt(num_subsets)) if num_subsets > 1 else None
    return {"kid": float(estimates.mean()), "kid_stderr": stderr, "kid_subsets": int(num_subsets),
            "kid_subset_size": int(min(len(real), len(fake)) // num_subsets)}


def _pairwise_distances(a, b):
    from sklearn.metrics import pairwise_distances

    return pairwise_distances(a, b, metric="euclidean")


def knn_radii(points, k=DEFAULT_K):
    """Distance from each point to its k-th nearest neighbour among the others: `[N]`."""
    from sklearn.neighbors import NearestNeighbors

    # Each point is its own nearest neighbour at distance 0: ask for k + 1.
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k]


def _fraction_inside(queries, points, radii, batch=2048):
    """Fraction of `queries` within radii[j] of some points[j]."""
    inside = np.zeros(len(queries), bool)
    for start in range(0, len(queries), batch):
        distances = _pairwise_distances(queries[start:start + batch], points)
        inside[start:start + batch] = (distances <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real, fake, k=DEFAULT_K):
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

    Args:
      real, fake: `[N, D]` and `[M, D]` features, N, M > k.
      k: the neighbour whose distance is a point's radius (default 3, the paper's).

    Returns:
      {"precision", "recall", "k"}.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f"precision_recall: k must be an integer >= 1, got {k!r}")
    real, fake = _pair(real, fake, min_rows=k + 1)
    precision = _fraction_inside(fake, real, knn_radii(real, k))
    recall = _fraction_inside(real, fake, knn_radii(fake, k))
    return {"precision": precision, "recall": recall, "k": int(k)}


def mode_coverage(samples, modes, std, num_std=MODE_NUM_STD, min_count=1):
    """Modes that get samples, and the fraction of samples near a mode (module doc).

    Args:
      samples: `[N, D]` points (2-D for the 8-Gaussians toy).
      modes: `[K, D]` mode centres.
      std: the modes' standard deviation (isotropic), > 0.
      num_std: "near" is within num_std * std (Euclidean) of the nearest mode.
      min_count: near samples a mode needs to count as covered.

    Returns:
      {"modes_covered", "num_modes", "fraction_near_mode", "samples_per_mode" (near
      samples of each mode, a list)}.
    """
    samples = _features(samples, "samples", min_rows=1)
    modes = np.asarray(modes, np.float64)
    if modes.ndim != 2 or modes.shape[1] != samples.shape[1]:
        raise UserError(f"mode_coverage: modes must be [K, {samples.shape[1]}], got shape {list(modes.shape)}")
    if not std > 0:
        raise UserError(f"mode_coverage: std must be > 0, got {std}")
    distances = _pairwise_distances(samples, modes)
    nearest = distances.argmin(axis=1)
    near = distances[np.arange(len(samples)), nearest] <= num_std * std
    counts = np.bincount(nearest[near], minlength=len(modes))
    return {"modes_covered": int((counts >= min_count).sum()), "num_modes": int(len(modes)),
            "fraction_near_mode": float(near.mean()), "samples_per_mode": counts.tolist()}
