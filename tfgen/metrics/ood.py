"""Out-of-distribution detection from likelihoods: scores, thresholds and their evaluation.

Every score here is "higher = more unusual", in bits per example:

- `log_prob`:   S(x) = -log2 p(x). Known to fail: simple inputs (constant images) get
  higher likelihood than the training data (Nalisnick et al. 2019).
- `likelihood_ratio`: S(x) = -(log2 p(x) - log2 p_bg(x)), with p_bg a background model
  that captures population-level statistics, so the ratio keeps what is specific to the
  training data (Ren et al. 2019, https://arxiv.org/abs/1906.02845).
- `complexity`: S(x) = -log2 p(x) - L(x), with L(x) the length in bits of a lossless
  code of x (here PNG's): an input the generic compressor finds simple is not credited
  for being likely (Serra et al. 2020, https://arxiv.org/abs/1909.11480).

A threshold is fitted on held-out in-distribution scores at a chosen false-positive rate
(the fraction of in-distribution inputs flagged); evaluation is AUROC (OOD as the
positive class) and the FPR at 95% TPR.
"""

import io
import math

import numpy as np

SCORES = ("log_prob", "likelihood_ratio", "complexity")
LN2 = math.log(2.0)


def score(kind, log_prob, background_log_prob=None, code_bits=None):
    """The OOD score `kind` (see the module doc) from log p(x) in nats, per example."""
    bits = -np.asarray(log_prob, np.float64) / LN2
    if kind == "log_prob":
        return bits
    if kind == "likelihood_ratio":
        if background_log_prob is None:
            raise ValueError("the likelihood ratio needs the background model's log_prob")
        return bits + np.asarray(background_log_prob, np.float64) / LN2
    if kind == "complexity":
        if code_bits is None:
            raise ValueError("the complexity correction needs each input's code length")
        return bits - np.asarray(code_bits, np.float64)
    raise ValueError(f"unknown score {kind!r}; use one of {SCORES}")


def png_code_bits(images, levels):
    """PNG code length in bits of each image `[N, H, W, C]` holding integer levels
    `0 .. levels-1` (rescaled to 8 bits first, as a viewer stores them; maximum
    compression), the L(x) of Serra et al."""
    from PIL import Image

    images = np.asarray(images, np.float64)
    scale = 255.0 / max(levels - 1, 1)
    bits = np.empty([len(images)])
    for i, image in enumerate(images):
        pixels = np.clip(np.round(image * scale), 0, 255).astype(np.uint8)
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
        bits[i] = 8 * buffer.tell()
    return bits


def auroc(in_scores, out_scores):
    """Area under the ROC curve of OOD (positive) against in-distribution scores: the
    probability that an OOD input scores higher than an in-distribution one, ties half."""
    from scipy.stats import rankdata

    in_scores, out_scores = np.asarray(in_scores, np.float64), np.asarray(out_scores, np.float64)
    ranks = rankdata(np.concatenate([in_scores, out_scores]))
    n_in, n_out = len(in_scores), len(out_scores)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def fit_threshold(in_scores, false_positive_rate):
    """The threshold flagging at most `false_positive_rate` of `in_scores` (score > t)."""
    if not 0 <= false_positive_rate < 1:
        raise ValueError(f"the false-positive rate must be in [0, 1), got {false_positive_rate}")
    scores = np.sort(np.asarray(in_scores, np.float64))
    if not len(scores) or not np.all(np.isfinite(scores)):
        raise ValueError("fitting a threshold needs finite in-distribution scores")
    allowed = int(math.floor(false_positive_rate * len(scores)))
    return float(scores[len(scores) - allowed - 1])


def fpr_at_tpr(in_scores, out_scores, tpr=0.95):
    """The fraction of in-distribution inputs flagged by the threshold that flags `tpr`
    of the OOD inputs."""
    out_scores = np.sort(np.asarray(out_scores, np.float64))
    threshold = out_scores[int(math.floor((1 - tpr) * len(out_scores)))]
    return float(np.mean(np.asarray(in_scores, np.float64) >= threshold))
