"""Sample-quality figures in TensorBoard during training, every `tensorboard.metrics_every` epochs.

Off by default (0): drawing a few hundred samples and their features costs about as much
as an epoch of a small model. When on, after every N-th epoch the chief draws
`metrics_num_samples` samples (default: as many as the validation split holds) from
the fixed seeds `training.seed ..` (a conditional model for the validation rows' labels)
with the model's own `sample`, and writes the figures of `tfgen.metrics.report` against
the validation split (never test) to `RUN_DIR/logs/sample_quality`: Frechet distance,
KID and its standard error, precision, recall, and where they apply mode coverage and
class accuracy, each as `sample_quality/<figure>` at step = epochs done. Sample grids are
`SampleSummaries`' (tfgen.training.callbacks).

The feature network (`tensorboard.metrics_feature_network`, default by the data as
`tfgen evaluate` chooses it) is loaded and checked against the data before training
starts, so a wrong name fails before the run directory is written.
"""

import os

import numpy as np

from tfgen.backend import keras, tf
from tfgen.errors import UserError
from tfgen.training import strategy as strategy_lib
from tfgen.training import summaries

LOGGED = ("frechet_distance", "kid", "kid_stderr", "precision", "recall", "modes_covered",
          "fraction_near_mode", "class_accuracy")


def from_config(config, dataset, log=print):
    """The callback a training config asks for, or None (`metrics_every: 0`)."""
    tb = config.tensorboard
    if not (tb.enabled and tb.metrics_every):
        return None
    from tfgen.metrics.features import default_feature_network, load_feature_network
    from tfgen.metrics.report import mode_model

    reference = dataset.splits.get("validation")
    if reference is None:
        raise UserError(f"tensorboard.metrics_every needs a validation split; dataset {config.data.name!r} has none")
    spec = dataset.spec
    name = tb.metrics_feature_network or default_feature_network(spec)
    if name is None:
        raise UserError(f"tensorboard.metrics_every: no default feature network for {spec.kind} data "
                        f"{list(spec.event_shape)}; set tensorboard.metrics_feature_network")
    network = load_feature_network(name)
    network.check(spec)
    return SampleQualitySummaries(os.path.join(config.run_dir, "logs"), spec, reference, network,
                                  every=tb.metrics_every, num_samples=tb.metrics_num_samples,
                                  seed=config.training.seed, modes=mode_model(config.data.to_load_dict()), log=log)


class SampleQualitySummaries(keras.callbacks.Callback):
    """Writes `tfgen.metrics.report.sample_quality` of the model's samples (module doc).

    Args:
      log_dir: the run's TensorBoard directory (written to `log_dir/sample_quality`).
      spec: the model's `DataSpec`.
      reference: the validation `Split`.
      network: a `tfgen.metrics.features.FeatureNetwork`.
      every: epochs between figures.
      num_samples: samples each time (default: the reference's size).
      seed: first of the consecutive sample seeds.
      modes: (centres, std) for mode coverage, or None.
      log: where each epoch's one-line summary goes.
    """

    def __init__(self, log_dir, spec, reference, network, every, num_samples=None, seed=0, modes=None, log=print):
        super().__init__()
        self.log_dir, self.spec, self.reference, self.network = log_dir, spec, reference, network
        self.every, self.seed, self.modes, self.log = every, seed, modes, log
        self.num_samples = num_samples or len(reference)
        self.labels = np.resize(reference.y, self.num_samples) if spec.conditional else None
        self._real_features = None
        self._writer = None
        self.last = None  # the figures last written

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or not strategy_lib.is_chief(self.model.distribute_strategy):
            return
        from tfgen.metrics.report import sample_quality

        if self._real_features is None:
            self._real_features = self.network.features(self.reference.x, self.spec)
        seeds = tf.range(self.num_samples, dtype=tf.int64) + self.seed
        condition = None if self.labels is None else tf.constant(self.labels, tf.int32)
        samples = self.model.sample(seeds, condition=condition).numpy()
        try:
            figures = sample_quality(self.reference.x, samples, self.spec, self.network, seed=self.seed,
                                     modes=self.modes, fake_labels=self.labels, real_features=self._real_features)
        except UserError as e:  # non-finite samples: say so, keep training (the NaN guard owns stopping)
            self.log(f"epoch {epoch + 1}: no sample-quality figures: {e}")
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "sample_quality"))
        with self._writer.as_default():
            for name in LOGGED:
                if figures.get(name) is not None:
                    summaries.scalar(f"sample_quality/{name}", figures[name], step=epoch + 1)
        self._writer.flush()
        self.last = figures
        self.log(f"epoch {epoch + 1}: samples vs validation ({self.network.name} features): "
                 f"FD {figures['frechet_distance']:.4f}, KID {figures['kid']:.5f} +- {figures['kid_stderr'] or 0:.5f}, "
                 f"precision {figures['precision']:.3f}, recall {figures['recall']:.3f}")

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
