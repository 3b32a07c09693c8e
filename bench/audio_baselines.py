"""Baselines of the speech WaveNet in held-out bits per audio sample, on its split.

    .venv/bin/python bench/audio_baselines.py [--model saved_models/speech_wavenet]

Both baselines model the same mu-law levels of the same `speech` test split as the
shipped WaveNet (data options read from its tfgen.json), so the three figures compare:

- i.i.d. mu-law histogram: p(level) from the training counts (+1 smoothing);
- linear prediction: order-16 least squares on the decoded waveform (x_t from the 16
  samples before it, zeros before a segment's start, as WaveNet sees them), and the
  residual as a Gaussian or Laplace density (the better one on validation) integrated
  over each mu-law level's interval of the waveform, the end levels taking the tails.

The WaveNet's figure is recomputed from the export (its `log_prob` signature on the
test split) next to the one its training run recorded. Prints a table, writes nothing.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfgen.data import load_dataset  # noqa: E402
from tfgen.data.audio import mu_law_decode  # noqa: E402
from tfgen.export.reader import read_metadata, resolve_version  # noqa: E402

ORDER = 16


def histogram_bits(train, test, levels):
    counts = np.bincount(train.astype(np.int64).ravel(), minlength=levels) + 1.0
    log2_p = np.log2(counts / counts.sum())
    return float(-log2_p[test.astype(np.int64)].mean())


def _lagged(waveform, order):
    """`[N*T, order]` past samples (zeros before each segment) and `[N*T]` targets."""
    n, t = waveform.shape
    padded = np.concatenate([np.zeros([n, order]), waveform], axis=1)
    past = np.stack([padded[:, order - k:order - k + t] for k in range(1, order + 1)], axis=-1)
    return past.reshape(-1, order), waveform.reshape(-1)


def _level_edges(levels):
    """The waveform interval of each mu-law level: midpoints between decoded levels."""
    centres = mu_law_decode(np.arange(levels), levels)
    edges = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[-np.inf], edges]), np.concatenate([edges, [np.inf]])


def _bits(codes, prediction, cdf, levels):
    low, high = _level_edges(levels)
    codes = codes.astype(np.int64).ravel()
    mass = cdf(high[codes] - prediction) - cdf(low[codes] - prediction)
    return float(-np.log2(np.maximum(mass, 1e-300)).mean())


def linear_prediction_bits(train, validation, test, levels, order=ORDER):
    from scipy import stats

    past, target = _lagged(mu_law_decode(train[..., 0], levels), order)
    coefficients, *_ = np.linalg.lstsq(past, target, rcond=None)
    residual = target - past @ coefficients
    residuals = {"gaussian": stats.norm(scale=residual.std()).cdf,
                 "laplace": stats.laplace(scale=np.abs(residual).mean()).cdf}

    def score(split, cdf):
        lagged, _ = _lagged(mu_law_decode(split[..., 0], levels), order)
        return _bits(split, lagged @ coefficients, cdf, levels)

    chosen = min(residuals, key=lambda name: score(validation, residuals[name]))
    return score(test, residuals[chosen]), chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="saved_models/speech_wavenet", help="the speech WaveNet export")
    args = parser.parse_args()
    version_dir = resolve_version(args.model)
    meta = read_metadata(version_dir)
    data = dict(meta["training_data"]["data"])
    dataset = load_dataset(data)
    levels = dataset.spec.levels
    splits = {name: dataset.splits[name] for name in ("train", "validation", "test")}
    import tensorflow as tf

    test = splits["test"]
    inputs = {"x": tf.constant(test.x)}
    if dataset.spec.conditional:
        inputs["condition"] = tf.constant(test.y)
    signature = tf.saved_model.load(version_dir).signatures["log_prob"]
    recomputed = float(np.mean(signature(**inputs)["bits_per_dim"].numpy()))
    lpc, residual = linear_prediction_bits(splits["train"].x, splits["validation"].x, test.x, levels)
    print(f"speech test split: {len(test)} segments x {dataset.spec.event_shape[0]} samples, {levels} mu-law levels")
    print(f"{'model':<44}{'test bits/sample':>18}")
    print(f"{'i.i.d. mu-law histogram':<44}{histogram_bits(splits['train'].x, test.x, levels):>18.3f}")
    print(f"{f'linear prediction, order {ORDER} ({residual} residual)':<44}{lpc:>18.3f}")
    print(f"{f'WaveNet {os.path.basename(args.model)} (its log_prob signature)':<44}{recomputed:>18.3f}")
    print(f"{'WaveNet, as its training run recorded':<44}{meta['metrics']['bits_per_dim']:>18.3f}")


if __name__ == "__main__":
    main()
