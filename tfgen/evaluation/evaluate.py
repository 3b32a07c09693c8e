"""Sample-quality figures of an export or a served model against its held-out data.

`evaluate(caller, reference, spec, network)` draws samples through a signature caller
(`tfgen.latent.callers.LocalCaller` for an export on disk, `ServerCaller` for a model
served over the TF Serving API) with fixed seeds `seed .. seed + n - 1`, and compares
them with `reference` (a `Split` of the model's dataset) by `tfgen.metrics.report`. A
conditional model draws for the reference rows' own labels (cycled when more samples
than rows are asked for), so both sets hold the classes in the same proportions, and
the classifier's accuracy on the requested classes is reported with the rest.

Example:

    caller = LocalCaller("saved_models/digits_vae")
    dataset = load_dataset(caller.metadata["training_data"]["data"])
    figures = evaluate(caller, dataset.splits["test"], caller.data_spec(),
                       load_feature_network("digits_classifier"))
"""

import numpy as np

from tfgen.contract import SIGNATURES
from tfgen.errors import UserError
from tfgen.metrics.report import sample_quality

SAMPLE_BATCH = 256  # rows per `sample` call


def sample_inputs(num_samples, seed, temperature, labels=None):
    """The `sample` signature inputs: seeds `seed ..`, one temperature, optional classes."""
    sample = SIGNATURES["sample"]
    inputs = {"seed": np.arange(seed, seed + num_samples, dtype=sample.input("seed").dtype),
              "temperature": np.full([num_samples], temperature, sample.input("temperature").dtype)}
    if labels is not None:
        inputs["condition"] = np.asarray(labels, sample.input("condition").dtype)
    return inputs


def draw_samples(caller, inputs, batch_size=SAMPLE_BATCH, progress=None):
    """`caller`'s `sample` signature over `inputs` in batches; `progress(rows)` after each."""
    if "sample" not in caller.signatures:
        raise UserError(f"{caller.source} has no sample signature (it has {sorted(caller.signatures)}): "
                        "nothing to evaluate")
    total = len(inputs["seed"])
    parts = []
    for start in range(0, total, batch_size):
        batch = {name: values[start:start + batch_size] for name, values in inputs.items()}
        parts.append(np.asarray(caller.call("sample", batch)["samples"]))
        if progress:
            progress(len(parts[-1]))
    return np.concatenate(parts)


def evaluate(caller, reference, spec, network, num_samples=None, seed=0, temperature=1.0, modes=None,
             batch_size=SAMPLE_BATCH, progress=None, **figures_options):
    """Draws samples from `caller` and returns their figures against `reference`.

    Args:
      caller: a signature caller with a `sample` signature.
      reference: the held-out `Split` (with labels for a conditional model).
      spec: the model's `DataSpec`.
      network: the `FeatureNetwork`.
      num_samples: samples to draw; default as many as `reference` holds (figures of
        different models compare at the same sample sizes).
      seed: the first sample seed.
      temperature: the sampling temperature.
      modes: (centres, std) for mode coverage (`tfgen.metrics.report.mode_model`).
      batch_size: rows per `sample` call.
      progress: called with the rows of each finished batch.
      **figures_options: `k`, `kid_subsets` of `tfgen.metrics.report.sample_quality`.

    Returns:
      The `sample_quality` figures plus "seed", "temperature".
    """
    num_samples = len(reference) if num_samples is None else num_samples
    if num_samples < 2:
        raise UserError(f"the number of samples must be >= 2, got {num_samples}")
    if tuple(reference.x.shape[1:]) != spec.event_shape:
        raise UserError(f"the reference examples have shape {list(reference.x.shape[1:])}; the model's are "
                        f"{list(spec.event_shape)}")
    network.check(spec)
    labels = None
    if spec.conditional:
        if reference.y is None:
            raise UserError(f"{caller.source} is conditional; the reference data has no labels to draw for")
        labels = np.resize(reference.y, num_samples)
    samples = draw_samples(caller, sample_inputs(num_samples, seed, temperature, labels), batch_size, progress)
    if tuple(samples.shape[1:]) != spec.event_shape:
        raise UserError(f"{caller.source} returned samples of shape {list(samples.shape[1:])}; its data spec "
                        f"says {list(spec.event_shape)}")
    figures = sample_quality(reference.x, samples, spec, network, modes=modes, fake_labels=labels,
                             seed=seed, **figures_options)
    return {**figures, "seed": int(seed), "temperature": float(temperature)}


def rows_seen_in_training(network, reference, spec):
    """How many `reference` rows also occur in the train split a classifier network was
    fitted on (0 for networks trained elsewhere), by exact bytes: a reference split that
    overlaps the features' training data flatters every figure."""
    training_data = getattr(network, "training_data", None)
    if not training_data or getattr(network, "event_shape", None) != spec.event_shape:
        return 0
    from tfgen.data.datasets import load_dataset

    train = load_dataset(training_data).splits["train"].x
    seen = {row.tobytes() for row in np.asarray(train, np.float32)}
    return int(sum(row.tobytes() in seen for row in np.asarray(reference.x, np.float32)))
