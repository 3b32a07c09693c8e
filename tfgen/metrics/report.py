"""Every sample-quality figure of one set of examples against a reference set.

`sample_quality(real, fake, spec, network)` is what `tfgen evaluate`, the reference
figures (bench/sample_quality.py) and the training callback compute, so their numbers
are the same computation: features of both sets from one `FeatureNetwork`, then Frechet
distance, KID (mean and standard error over disjoint subsets), precision/recall, and
where they apply the 8-Gaussians mode coverage and the classifier's accuracy on the
classes a conditional model was asked for.

Example:

    net = load_feature_network("digits_classifier")
    figures = sample_quality(test.x, samples, spec, net, fake_labels=conditions)
    figures["frechet_distance"], figures["kid"], figures["kid_stderr"], figures["class_accuracy"]
"""

import numpy as np

from tfgen.errors import UserError
from tfgen.metrics import sample_quality as metrics

# The order a table lists the figures in, and how each is printed.
FIGURES = (
    ("frechet_distance", "Frechet distance", "{:.4f}"),
    ("kid", "KID", "{:.5f}"),
    ("kid_stderr", "KID standard error", "{:.5f}"),
    ("precision", "precision", "{:.4f}"),
    ("recall", "recall", "{:.4f}"),
    ("modes_covered", "modes covered", "{}"),
    ("fraction_near_mode", "fraction within 3 std of a mode", "{:.4f}"),
    ("class_accuracy", "classified as the requested class", "{:.4f}"),
)


def mode_model(data_config):
    """(modes, std) of a dataset config with known modes (`eight_gaussians`), else None."""
    if not data_config or data_config.get("name") != "eight_gaussians":
        return None
    from tfgen.data.builtin import eight_gaussians_modes

    noise = data_config.get("noise")
    return eight_gaussians_modes() if noise is None else eight_gaussians_modes(noise)


def check_finite(x, what):
    """`x` as float32, or a `UserError` counting its non-finite rows."""
    x = np.asarray(x, np.float32)
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise UserError(f"{what}: {int(bad.sum())} of {len(x)} rows hold NaN/Inf (first: row {int(np.argmax(bad))}); "
                        "no sample-quality figure is computed from them")
    return x


def sample_quality(real, fake, spec, network, k=metrics.DEFAULT_K, kid_subsets=metrics.DEFAULT_KID_SUBSETS,
                   seed=0, modes=None, fake_labels=None, real_features=None):
    """The figures of `fake` against `real` (module doc), one flat dict.

    Args:
      real, fake: raw examples `[N, *spec.event_shape]`, `[M, *spec.event_shape]`.
      spec: their `DataSpec`.
      network: a `tfgen.metrics.features.FeatureNetwork`.
      k: precision/recall neighbour.
      kid_subsets: KID's disjoint subsets (at most half of the smaller set's rows).
      seed: seeds KID's subsets.
      modes: (centres, std) for mode coverage of raw `fake` (`mode_model`), or None.
      fake_labels: `[M]` classes `fake` was drawn for; with a classifier network adds
        `class_accuracy`, the fraction the classifier assigns to them.
      real_features: precomputed features of `real` (a callback reuses them).

    Returns:
      {"frechet_distance", "kid", "kid_stderr", "kid_subsets", "kid_subset_size",
       "precision", "recall", "k", "num_real", "num_generated", "feature_dim",
       "feature_network", "preprocessing"} and, when they apply, "modes_covered",
      "num_modes", "fraction_near_mode", "samples_per_mode", "class_accuracy".
    """
    fake = check_finite(fake, "generated examples")
    if real_features is None:
        real_features = network.features(check_finite(real, "reference examples"), spec)
    fake_features = network.features(fake, spec)
    figures = {"feature_network": network.name, "preprocessing": network.preprocessing}
    figures.update(metrics.frechet_distance(real_features, fake_features))
    figures.update(metrics.kernel_inception_distance(
        real_features, fake_features, num_subsets=min(kid_subsets, len(real_features) // 2, len(fake) // 2) or 1,
        seed=seed))
    figures.update(metrics.precision_recall(real_features, fake_features, k=k))
    if modes is not None:
        figures.update(metrics.mode_coverage(fake.reshape(len(fake), -1), *modes))
    if fake_labels is not None and hasattr(network, "classify"):
        figures["class_accuracy"] = float(np.mean(network.classify(fake, spec) == np.asarray(fake_labels)))
    return figures


def format_table(figures, title=None):
    """The figures `FIGURES` lists, one per line, for a terminal."""
    lines = [title] if title else []
    rows = [(label, fmt.format(figures[key])) for key, label, fmt in FIGURES if figures.get(key) is not None]
    if "modes_covered" in figures:
        rows = [(label, f"{value} / {figures['num_modes']}" if label == "modes covered" else value)
                for label, value in rows]
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    lines.append(f"  ({figures['num_generated']} generated vs {figures['num_real']} reference examples; "
                 f"{figures['feature_network']} features, {figures['feature_dim']} dims; KID over "
                 f"{figures['kid_subsets']} disjoint subsets of {figures['kid_subset_size']}; k = {figures['k']})")
    if min(figures["num_generated"], figures["num_real"]) <= figures["feature_dim"]:
        lines.append(f"  note: fewer examples than the {figures['feature_dim']} feature dimensions: the covariances "
                     "are singular and the Frechet distance mostly small-sample bias")
    return "\n".join(lines)
