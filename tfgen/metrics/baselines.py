"""Classical density baselines (scikit-learn) in bits/dim, comparable with tfgen's flows.

They use the same split and the same dequantization as the flows
(`tfgen.models.dequantization`): discrete data x in {0..L-1}^D is mapped to the unit cube,
u = (x + noise) / L with noise ~ U[0, 1)^D, and a density p_u on the cube scores

    bits/dim = -(log p_u(u) - D log L) / (D ln 2).

Continuous data is scored as it is: bits/dim = -log p(x) / (D ln 2). Training data gets
one seeded noise draw; each held-out split gets its own fixed seeded draw, so every
number is reproducible. Hyperparameters are chosen on "validation", reported on "test".

Example:

    results = density_baselines(load_dataset({"name": "digits"}))
    results["gmm"]["test_bits_per_dim"]   # about 2.7
"""

import numpy as np

from tfgen.metrics.bits import bits_per_dim
from tfgen.models import dequantization
from tfgen.errors import UserError

GMM_COMPONENTS = (1, 5, 10, 20)
KDE_BANDWIDTHS = (0.02, 0.05, 0.07, 0.1, 0.14, 0.2, 0.3)


def dequantized(x, spec, seed):
    """Examples as `[N, D]` points in the model's space: unit cube for discrete data.

    Args:
      x: `[N, *event_shape]` raw examples.
      spec: their `DataSpec`.
      seed: seeds the uniform dequantization noise (unused for continuous data).
    """
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    if not spec.is_discrete:
        return x
    noise = np.random.default_rng(seed).uniform(size=x.shape).astype(np.float32)
    return np.asarray(dequantization.dequantize(x, spec.levels, noise))


def bits_per_dim_from_density(log_density, spec):
    """Per-example bits/dim from the log density of the dequantized points (nats).

    Args:
      log_density: `[N]` log p_u(u) on the unit cube (discrete data) or log p(x).
      spec: the data's `DataSpec`.
    """
    log_prob = np.asarray(log_density, np.float64)
    if spec.is_discrete:
        log_prob = dequantization.discrete_log_prob(log_prob, spec.num_dims, spec.levels)
    return np.asarray(bits_per_dim(log_prob, spec.num_dims))


def _select_on_validation(candidates, dataset, seed):
    """Fits every candidate on train, keeps the best on validation, reports test.

    Args:
      candidates: label -> unfitted scikit-learn estimator with `score_samples`.
      dataset: a `Dataset` with "train", "validation" and "test" splits.
      seed: dequantization seed; split i gets noise seeded by (seed, i).

    Returns:
      {"choice": best label, "validation_bits_per_dim": {label: bits/dim},
       "test_bits_per_dim": test bits/dim of the best}.
    """
    missing = {"train", "validation", "test"} - set(dataset.splits)
    if missing:
        raise UserError(f"baselines need train, validation and test splits; missing {sorted(missing)}")
    spec = dataset.spec
    points = {
        name: dequantized(dataset.splits[name].x, spec, seed=(seed, i))
        for i, name in enumerate(("train", "validation", "test"))
    }

    def score(model, name):
        return float(np.mean(bits_per_dim_from_density(model.score_samples(points[name]), spec)))

    fitted = {label: model.fit(points["train"]) for label, model in candidates.items()}
    validation = {label: score(model, "validation") for label, model in fitted.items()}
    choice = min(validation, key=validation.get)
    return {"choice": choice, "validation_bits_per_dim": validation, "test_bits_per_dim": score(fitted[choice], "test")}


def gmm_baseline(dataset, components=GMM_COMPONENTS, seed=0):
    """Full-covariance Gaussian mixtures; the number of components chosen on validation.

    Args:
      dataset: a `Dataset` with train/validation/test splits.
      components: candidate numbers of components.
      seed: seeds dequantization and the mixture's initialization.
    """
    from sklearn.mixture import GaussianMixture

    candidates = {
        k: GaussianMixture(k, covariance_type="full", reg_covar=1e-6, max_iter=200, random_state=seed)
        for k in components
    }
    return _select_on_validation(candidates, dataset, seed)


def kde_baseline(dataset, bandwidths=KDE_BANDWIDTHS, seed=0):
    """Gaussian kernel density; the bandwidth (in the model's space) chosen on validation.

    Args:
      dataset: a `Dataset` with train/validation/test splits.
      bandwidths: candidate kernel standard deviations (unit-cube units for discrete data).
      seed: seeds dequantization.
    """
    from sklearn.neighbors import KernelDensity

    candidates = {h: KernelDensity(bandwidth=h, kernel="gaussian") for h in bandwidths}
    return _select_on_validation(candidates, dataset, seed)


def density_baselines(dataset, seed=0):
    """Both baselines: {"gmm": ..., "kde": ...} as returned by `gmm_baseline`/`kde_baseline`."""
    return {"gmm": gmm_baseline(dataset, seed=seed), "kde": kde_baseline(dataset, seed=seed)}
