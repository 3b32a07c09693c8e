"""Out-of-distribution detection and Bayes classification with the shipped digits models.

    .venv/bin/python bench/ood_digits.py [--rows 200] [--picture docs/images/ood_digits.png]

In-distribution: the digits test split (the split every shipped digits model was trained
beside: `digits`, seed 0); thresholds are fitted on the validation split at 5% FPR.
OOD sets, each `--rows` rows of 8x8 grey at 17 levels: patches of scikit-learn's sample
photographs (the `photo_patches` dataset, test split, averaged to grey), uniform noise,
inverted test digits (16 - x), constant images (every level). Scores (tfgen.metrics.ood):
-log2 p(x), the likelihood ratio against a background model (digits_background_ppca,
trained on perturbed digits as Ren et al. 2019 do, and for comparison digits_ppca,
trained on clean ones), and the PNG complexity correction. Conditional models score with their marginal log p(x)
(`tfgen.scoring.classify.Classifier`: log_prob per class and the training class prior)
and classify by argmax p(y | x); a logistic regression on the same
train split is the reference accuracy. Prints Markdown tables for docs/ood.md.
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from common import logistic_regression_accuracy  # noqa: E402
from tfgen.backend import tf  # noqa: E402
from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.scoring.classify import Classifier  # noqa: E402
from tfgen.metrics.ood import auroc, fit_threshold, fpr_at_tpr, png_code_bits, score  # noqa: E402

MODELS = ("digits_realnvp", "digits_vae", "digits_ppca", "digits_conditional_glow",
          "digits_conditional_pixel_cnn", "digits_conditional_vae")
#: Likelihood-ratio backgrounds, each scored in the same run; the first is the one the
#: histogram shows.
BACKGROUNDS = ("digits_background_ppca", "digits_ppca")
LEVELS = 17


def ood_sets(test_x, rows, seed=0):
    rng = np.random.default_rng(seed)
    photo = load_dataset({"name": "photo_patches", "num_patches": 20 * rows, "seed": seed}).splits["test"].x[:rows]
    grey = np.round(photo.astype(np.float64).mean(axis=-1, keepdims=True) / 255 * (LEVELS - 1))
    return {
        "photo patches": grey.astype(np.float32),
        "uniform noise": rng.integers(0, LEVELS, size=[rows, 8, 8, 1]).astype(np.float32),
        "inverted digits": (LEVELS - 1 - test_x[:rows]).astype(np.float32),
        "constant images": np.broadcast_to((np.arange(rows) % LEVELS).astype(np.float32)[:, None, None, None],
                                           [rows, 8, 8, 1]).copy(),
    }


class Model:
    def __init__(self, name):
        self.name = name
        path = os.path.join(ROOT, "saved_models", name, "1")
        self.loaded = tf.saved_model.load(path)
        self.conditional = "classify" in self.loaded.signatures
        self.classifier = Classifier(path) if self.conditional else None

    def log_prob(self, x):
        if self.conditional:
            return self.classifier(x)[1]
        return self.loaded.signatures["log_prob"](x=tf.constant(x))["log_prob"].numpy()

    def classes(self, x):
        return np.argmax(self.classifier(x)[0], 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200, help="rows per OOD set")
    parser.add_argument("--picture", default=os.path.join(ROOT, "docs", "images", "ood_digits.png"))
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS,
                        help=f"models to score (default all; {', '.join(BACKGROUNDS)} are scored as backgrounds)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    data = load_dataset({"name": "digits", "conditional": True, "seed": 0})
    train, val, test = (data.splits[s] for s in ("train", "validation", "test"))
    sets = ood_sets(test.x, args.rows)
    inputs = {"validation": val.x.astype(np.float32), "test": test.x.astype(np.float32), **sets}
    code_bits = {k: png_code_bits(v, LEVELS) for k, v in inputs.items()}
    log_probs = {}
    models = [m for m in MODELS if m in args.models]
    for name in dict.fromkeys(models + list(BACKGROUNDS)):
        model = Model(name)
        log_probs[name] = {k: model.log_prob(v) for k, v in inputs.items()}
        if model.conditional:
            log_probs[name]["accuracy"] = float(np.mean(model.classes(inputs["test"]) == test.y))
        print(f"# scored with {name} ({time.monotonic() - start:.0f} s)", flush=True)

    def scores(name, kind, part, background=BACKGROUNDS[0]):
        extra = {"background_log_prob": log_probs[background][part]} if kind == "likelihood_ratio" else {}
        return score(kind, log_probs[name][part], code_bits=code_bits[part], **extra)

    kinds = [("log_prob", None)] + [("likelihood_ratio", b) for b in BACKGROUNDS] + [("complexity", None)]

    print(f"\nIn-distribution: {len(test.x)} test digits (thresholds from {len(val.x)} validation "
          f"digits at 5% FPR); OOD sets of {args.rows} rows.\n")
    print("| model | score | " + " | ".join(f"AUROC {s}" for s in sets) + " | mean FPR@95TPR | "
          + " | ".join(f"rejected {s}" for s in sets) + " | test digits rejected |")
    print("|---|---|" + "---|" * (2 * len(sets) + 2))
    for name in models:
        for kind, background in kinds:
            if name == background:
                continue
            threshold = fit_threshold(scores(name, kind, "validation", background), 0.05)
            in_scores = scores(name, kind, "test", background)
            aurocs = [auroc(in_scores, scores(name, kind, s, background)) for s in sets]
            fprs = [fpr_at_tpr(in_scores, scores(name, kind, s, background)) for s in sets]
            rejected = [np.mean(scores(name, kind, s, background) > threshold) for s in sets]
            label = f"{kind} vs {background}" if background else kind
            print(f"| {name} | {label} | " + " | ".join(f"{a:.3f}" for a in aurocs) + f" | {np.mean(fprs):.3f} | "
                  + " | ".join(f"{r:.2f}" for r in rejected) + f" | {np.mean(in_scores > threshold):.3f} |")

    reference = logistic_regression_accuracy(train, test, LEVELS)
    print("\n| classifier | test accuracy | points vs logistic regression |\n|---|---|---|")
    print(f"| logistic regression (same train split) | {reference:.4f} | 0 |")
    for name in models:
        if "accuracy" in log_probs[name]:
            accuracy = log_probs[name]["accuracy"]
            print(f"| {name} (Bayes, argmax p(y given x)) | {accuracy:.4f} | {100 * (accuracy - reference):+.1f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    name = "digits_conditional_glow" if "digits_conditional_glow" in models else models[0]

    def squashed(s):  # OOD scores span 10^1 .. 10^7 bits: a signed log axis shows them all
        return np.sign(s) * np.log10(1 + np.abs(s))

    for ax, kind in zip(axes, ("log_prob", "likelihood_ratio", "complexity")):
        parts = ["test"] + list(sets)
        values = {p: squashed(scores(name, kind, p)) for p in parts}
        finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
        bins = np.linspace(finite.min(), finite.max(), 60)
        for p in parts:
            ax.hist(values[p], bins=bins, alpha=0.55, label="test digits" if p == "test" else p)
        ax.axvline(squashed(fit_threshold(scores(name, kind, "validation"), 0.05)), color="k", ls="--",
                   label="threshold (5% of validation digits)")
        ax.set_title(f"{name}: {kind}" + (f" vs {BACKGROUNDS[0]}" if kind == "likelihood_ratio" else ""))
        ax.set_xlabel("sign(S) log10(1 + |S|), S the OOD score in bits")
        ax.set_ylabel("rows")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.picture), exist_ok=True)
    fig.savefig(args.picture, dpi=80)
    print(f"\nwrote {args.picture}; {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
