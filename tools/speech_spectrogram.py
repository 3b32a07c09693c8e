"""Spectrograms of real test speech and of the shipped WaveNet's samples, per voice.

    .venv/bin/python tools/speech_spectrogram.py [--model saved_models/speech_wavenet]
        [--seconds 1.5] [--out docs/images/speech_wavenet_spectrogram.png]

For each of two voices: a real test segment (`speech` test split, never trained on)
and a sample of the same voice drawn by the export's `sample` signature (seed 0 and 1,
`length` = the shown seconds). To listen: `tfgen sample --model saved_models/speech_wavenet
--condition 0 -n 2 --out voice0.wav`.
"""

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfgen.data import load_dataset  # noqa: E402
from tfgen.data.audio import mu_law_decode  # noqa: E402
from tfgen.data.visualize import save_spectrograms  # noqa: E402
from tfgen.export.reader import read_metadata, resolve_version  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "saved_models", "speech_wavenet"))
    parser.add_argument("--seconds", type=float, default=1.5, help="audio per panel")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "speech_wavenet_spectrogram.png"))
    args = parser.parse_args()
    import tensorflow as tf

    version_dir = resolve_version(args.model)
    meta = read_metadata(version_dir)
    dataset = load_dataset(dict(meta["training_data"]["data"]))
    spec, test = dataset.spec, dataset.splits["test"]
    rate, levels = spec.sample_rate, spec.levels
    length = int(args.seconds * rate)
    voices = (0, 1)
    generated = tf.saved_model.load(version_dir).signatures["sample"](
        seed=tf.constant(voices, tf.int64), temperature=tf.ones([len(voices)]),
        condition=tf.constant(voices, tf.int32), length=tf.fill([len(voices)], length))["samples"].numpy()
    panels = {}
    for row, voice in enumerate(voices):
        name = dataset.class_names[voice]
        # Consecutive test segments of this voice (one sentence), as long as a sample.
        real = test.x[test.y == voice][:, :, 0].reshape(-1)
        start = int(np.argmax(np.abs(mu_law_decode(real, levels)) > 0.05))  # skip leading silence
        panels[f"real: {name} (test split)"] = mu_law_decode(real[start:start + length], levels)
        panels[f"WaveNet sample: {name}"] = mu_law_decode(generated[row, :, 0], levels)
    save_spectrograms(panels, rate, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
