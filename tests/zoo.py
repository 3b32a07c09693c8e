"""Tiny configurations of every tfgen model, for tests that parametrize over models.

`ZOO[name] = (class_name, constructor kwargs)`: every registered class (vector and image,
unconditional and conditional, for the flows) plus the unregistered test models of
tests/toy_models.py, named by import path. The kwargs include the data spec as a plain
dict, so an entry is JSON and can be fed to `tfgen.models.base.model_from_config`.
`TINY_FLOWS` is the flow part; `REPRESENTATIVE` names one entry per class for the costly
checks (export and conformance). `build(name)` constructs the model and calls it once,
so its variables exist (e.g. before an export or a checkpoint restore);
`example_batch(name)` gives matching inputs.

A new model class gets an entry in `_TINY`, `LATENT_MODELS`, `GAN_MODELS`, `DIFFUSION_MODELS` or `SCORE_MODELS` (registered)
or `_TOYS` (test-only);
tests/models/test_contract.py fails for a registered class without one.
"""

import zlib

import numpy as np
import pytest

from tfgen.backend import keras
from tfgen.models.base import get_model_class, registered_models

VECTOR = {"event_shape": [4], "kind": "vector"}
IMAGE = {"event_shape": [4, 4, 1], "kind": "image", "levels": 17}
NUM_CLASSES = 3

# Per-class tiny hyperparameters (all, image only); multi-scale classes get two levels on
# images, with one step per resolution and one residual block per coupling network.
_MULTISCALE = {"num_levels": 2, "steps_per_level": 1, "num_hidden_layers": 1}
_TINY = {
    "NICE": ({"steps_per_level": 2, "hidden_units": 16}, _MULTISCALE),
    "RealNVP": ({"steps_per_level": 2, "hidden_units": 16}, _MULTISCALE),
    "Glow": ({"steps_per_level": 2, "hidden_units": 16}, _MULTISCALE),
    "NeuralSplineFlow": ({"steps_per_level": 2, "hidden_units": 16, "num_bins": 4}, _MULTISCALE),
    "MAF": ({"num_steps": 2, "hidden_units": 16}, {}),
    "IAF": ({"num_steps": 2, "hidden_units": 16}, {}),
    "AutoregressiveNeuralSplineFlow": ({"num_steps": 2, "hidden_units": 16, "num_bins": 4}, {}),
}


def _snake(class_name):
    special = {"NICE": "nice", "RealNVP": "real_nvp", "MAF": "maf", "IAF": "iaf"}
    if class_name in special:
        return special[class_name]
    return "".join("_" + c.lower() if c.isupper() else c for c in class_name).lstrip("_")


def _entries():
    entries = {}
    available = registered_models()
    for class_name, (common, image_only) in _TINY.items():
        if class_name not in available:
            continue
        for kind, spec in (("vector", VECTOR), ("image", IMAGE)):
            for conditional in (False, True):
                data_spec = dict(spec, num_classes=NUM_CLASSES) if conditional else dict(spec)
                kwargs = dict(common, data_spec=data_spec, condition_dim=4)
                if kind == "image":
                    kwargs.update(image_only)
                name = f"{_snake(class_name)}_{kind}" + ("_conditional" if conditional else "")
                entries[name] = (class_name, kwargs)
    return entries


TINY_FLOWS = _entries()
_TINY_VAE = {"latent_dim": 2, "hidden_units": [8], "num_importance_samples": 8, "condition_dim": 4,
             "prior_hidden_units": 8, "posterior_hidden_units": 8, "num_pseudo_inputs": 3}
#: Latent-variable models: pPCA (unconditional) and the VAE's variants, each a distinct
#: code path (likelihoods, networks, priors, posterior flows).
LATENT_MODELS = {
    "ppca_vector": ("PPCA", {"data_spec": VECTOR, "latent_dim": 2}),
    "ppca_image": ("PPCA", {"data_spec": IMAGE, "latent_dim": 3}),
    "vae_vector_gaussian": ("VAE", dict(_TINY_VAE, data_spec=VECTOR)),
    "vae_image_conditional": ("VAE", dict(_TINY_VAE, data_spec=dict(IMAGE, num_classes=NUM_CLASSES))),
    "vae_image_conv_mixture_iwae": ("VAE", dict(_TINY_VAE, data_spec=IMAGE, network="conv",
                                                likelihood="discretized_logistic_mixture", objective="iwae",
                                                training_samples=2)),
    "vae_binary_bernoulli_vamp_iaf": ("VAE", dict(_TINY_VAE, data_spec=dict(IMAGE, levels=2), likelihood="bernoulli",
                                                  prior="vamp", posterior="iaf")),
    "vae_image_conditional_maf_sylvester": ("VAE", dict(_TINY_VAE, data_spec=dict(IMAGE, num_classes=NUM_CLASSES),
                                                        prior="maf", posterior="sylvester", kl_warmup_steps=10)),
    "vae_vector_realnvp_planar": ("VAE", dict(_TINY_VAE, data_spec=VECTOR, prior="realnvp", posterior="planar")),
    "vae_vector_radial": ("VAE", dict(_TINY_VAE, data_spec=VECTOR, posterior="radial")),
    "vae_vector_householder": ("VAE", dict(_TINY_VAE, data_spec=VECTOR, posterior="householder", beta=2.0)),
}
LATENT_MODELS = {name: entry for name, entry in LATENT_MODELS.items() if entry[0] in registered_models()}
CONTINUOUS_VECTOR = {"event_shape": [2], "kind": "vector", "low": -3.0, "high": 3.0}
_TOYS = {
    "toy_diagonal_flow_image_conditional": (
        "toy_models:DiagonalAffineFlow",
        {"data_spec": dict(IMAGE, num_classes=NUM_CLASSES), "init_shift_stddev": 0.05, "condition_dim": 4}),
    "toy_adversarial": ("toy_models:ToyAdversarial", {"data_spec": CONTINUOUS_VECTOR, "latent_dim": 2}),
    "toy_latent_gaussian": ("toy_models:ToyLatentGaussian", {"data_spec": CONTINUOUS_VECTOR, "latent_dim": 1}),
}
COLOUR = {"event_shape": [3, 3, 3], "kind": "image", "levels": 8}
_PIXEL_CNN = {"num_layers": 2, "filters": 6, "head_units": 6}
# Autoregressive models: the image classes, grey conditional (categorical) and colour
# (channels autoregressive within a pixel, logistic mixture).
AUTOREGRESSIVE_MODELS = {
    "gated_pixel_cnn_image_conditional": (
        "GatedPixelCNN", dict(_PIXEL_CNN, data_spec=dict(IMAGE, num_classes=NUM_CLASSES), condition_dim=4)),
    "gated_pixel_cnn_colour": (
        "GatedPixelCNN", dict(_PIXEL_CNN, data_spec=COLOUR, likelihood="discretized_logistic_mixture",
                              num_components=2)),
}
AUDIO = {"event_shape": [24, 1], "kind": "audio", "levels": 16, "sample_rate": 8000}
AUTOREGRESSIVE_MODELS["wavenet_audio_conditional"] = (
    "WaveNet", {"data_spec": dict(AUDIO, num_classes=NUM_CLASSES), "residual_channels": 6, "skip_channels": 6,
                "layers_per_stack": 3, "num_stacks": 1, "condition_dim": 4, "max_length": 96})
_TINY_GAN = {"latent_dim": 3, "generator_units": [8], "discriminator_units": [8], "generator_filters": [6],
             "discriminator_filters": [6], "condition_dim": 4}
#: GANs: a conditional DCGAN (projection discriminator, spectral norm, hinge, R1) and an
#: MLP WGAN-GP on vectors (k = 2 critic steps, no EMA).
GAN_MODELS = {
    "gan_image_conditional": ("GAN", dict(_TINY_GAN, data_spec=dict(IMAGE, num_classes=NUM_CLASSES), loss="hinge",
                                          spectral_normalization=True, r1_weight=1.0)),
    "gan_vector_wgan_gp": ("GAN", dict(_TINY_GAN, data_spec=CONTINUOUS_VECTOR, loss="wasserstein",
                                       gradient_penalty_weight=10.0, discriminator_steps=2, ema_decay=0.0)),
}
GAN_MODELS = {name: entry for name, entry in GAN_MODELS.items() if entry[0] in registered_models()}
#: Diffusion models: a conditional one-level U-Net DDPM on images (cosine schedule,
#: attention) and an MLP DDPM on continuous vectors (linear schedule, Gaussian decoder, no
#: EMA); T = 50, the least the default sampling steps allow.
DIFFUSION_MODELS = {
    "ddpm_image_conditional": ("DDPM", {"data_spec": dict(IMAGE, num_classes=NUM_CLASSES), "timesteps": 50,
                                        "schedule": "cosine", "filters": 4, "channel_multipliers": [1],
                                        "groups": 2, "embedding_dim": 8}),
    "ddpm_vector": ("DDPM", {"data_spec": CONTINUOUS_VECTOR, "timesteps": 50, "hidden_units": [8, 8],
                             "embedding_dim": 8, "ema_decay": 0.0}),
}
DIFFUSION_MODELS = {name: entry for name, entry in DIFFUSION_MODELS.items() if entry[0] in registered_models()}
_TINY_NCSN = {"sigma_max": 2.0, "sigma_min": 0.1, "num_levels": 3, "hidden_units": [8], "embedding_dim": 4,
              "langevin_steps": 2, "langevin_step_size": 0.01, "max_langevin_steps": 8, "ode_steps": 4}
#: Score models: a continuous 2-D NCSN (exact divergence) and a conditional one on image
#: levels (dequantized, Hutchinson's divergence); RK4 for both (Dormand-Prince, slow
#: eagerly, is exported in tests/models/diffusion/test_score_model.py under -m slow).
SCORE_MODELS = {
    "ncsn_vector": ("NCSN", dict(_TINY_NCSN, data_spec=CONTINUOUS_VECTOR)),
    "ncsn_image_conditional": ("NCSN", dict(_TINY_NCSN, data_spec=dict(IMAGE, num_classes=NUM_CLASSES),
                                            ode_divergence="hutchinson", dequantization_samples=2)),
}
SCORE_MODELS = {name: entry for name, entry in SCORE_MODELS.items() if entry[0] in registered_models()}
ZOO = {**TINY_FLOWS, **LATENT_MODELS, **_TOYS, **AUTOREGRESSIVE_MODELS, **GAN_MODELS, **DIFFUSION_MODELS,
       **SCORE_MODELS}
_AUTOREGRESSIVE = ("MAF", "IAF", "AutoregressiveNeuralSplineFlow")
# One entry per class: images with a condition for the coupling flows (multi-scale code),
# conditional vectors for the autoregressive ones (images are flattened anyway).
REPRESENTATIVE = sorted(
    [f"{_snake(c)}_{'vector' if c in _AUTOREGRESSIVE else 'image'}_conditional" for c in _TINY
     if f"{_snake(c)}_vector" in TINY_FLOWS]
    + [name for name in ("ppca_image", "vae_image_conditional_maf_sylvester") if name in LATENT_MODELS]
    + list(_TOYS)
    + ["gated_pixel_cnn_image_conditional", "wavenet_audio_conditional"]
    + [name for name in ("gan_image_conditional",) if name in GAN_MODELS]
    + list(DIFFUSION_MODELS)
    + [name for name in ("ncsn_image_conditional",) if name in SCORE_MODELS])


def example_batch(name, batch_size=4, seed=0):
    """`(x, condition)` for zoo entry `name`; `condition` is None if unconditional."""
    _, kwargs = ZOO[name]
    spec = kwargs["data_spec"]
    rng = np.random.default_rng(seed)
    shape = [batch_size] + list(spec["event_shape"])
    if spec.get("levels"):
        x = rng.integers(0, spec["levels"], size=shape).astype(np.float32)
    else:
        x = rng.normal(size=shape).astype(np.float32)
    condition = None
    if spec.get("num_classes"):
        condition = (np.arange(batch_size) % spec["num_classes"]).astype(np.int32)
    return x, condition


def example_codes(model, batch_size, seeds=None):
    """Latent rows for `decode`: the codes `sample` decodes for `seeds`, or standard
    normal rows."""
    from tfgen.random import per_row_normal

    if seeds is not None:
        return per_row_normal(seeds, model.latent_shape).numpy()
    return np.random.default_rng(0).standard_normal([batch_size, *model.latent_shape]).astype(np.float32)


# Conformance takes 10-25 s per export. By default tests/models/test_contract.py runs it on
# one representative per base class:
# a flow that differs from its sibling only in its transformer (NICE beside RealNVP, IAF
# and the autoregressive spline beside MAF) and the diagonal test flow join under -m slow,
# as do the image spline flow (the shipped two_moons_nsf conforms by default: 22 s against
# 43 s), the image DDPM and the score-model representatives (the shipped
# checkerboard_score conforms by default; the shipped digits_ddpm, whose T = 1000 bound
# runs in each loader, under -m slow), Glow and RealNVP (coupling flows like the spline flow; the
# shipped Glow conforms under -m slow too) and the contract's latent and adversarial toys
# and the pPCA (the GAN takes their paths), and, for the default run's time budget on a
# 2-core machine, the VAE (25 s), the PixelCNN (18 s), the WaveNet (14 s; the shipped
# speech_wavenet is served and compared by default in tests/serving) and MAF (19 s; the
# shipped RealNVP's export is the flows' check by default).
CONFORMANCE_SLOW = ("maf_vector_conditional", "wavenet_audio_conditional", "neural_spline_flow_image_conditional",
                    "nice_image_conditional", "iaf_vector_conditional",
                    "autoregressive_neural_spline_flow_vector_conditional", "toy_diagonal_flow_image_conditional",
                    "glow_image_conditional", "real_nvp_image_conditional", "toy_latent_gaussian", "toy_adversarial",
                    "ddpm_image_conditional", "ncsn_image_conditional", "ppca_image",
                    "gated_pixel_cnn_image_conditional", "vae_image_conditional_maf_sylvester")
#: The classes whose export conformance a zoo representative checks by default; the
#: shipped exports of the other classes are checked by default in tests/test_saved_models.py,
#: but for its SLOW_CLASSES.
DEFAULT_CONFORMING_CLASSES = frozenset(ZOO[n][0] for n in REPRESENTATIVE if n not in CONFORMANCE_SLOW)


def build(name):
    """The zoo model `name`, called once on an example batch so its variables exist.
    Its initial weights are a function of `name` alone, so a test sees the same model
    whichever tests ran before it in the process."""
    class_name, kwargs = ZOO[name]
    keras.utils.set_random_seed(zlib.crc32(name.encode()))
    model = get_model_class(class_name)(**kwargs)
    x, condition = example_batch(name)
    model(x if condition is None else (x, condition))
    return model


_CACHE = {}


def perturb_weights(model, seed=0, scale=0.1):
    """Random non-zero weights, so identity-initialized models are tested as non-trivial."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(variable + scale * rng.normal(size=variable.shape).astype(np.float32))
    return model


def cached(name):
    """`build(name)` with perturbed weights, built once per test process and shared by
    the tests that do not change it."""
    if name not in _CACHE:
        _CACHE[name] = perturb_weights(build(name))
    return _CACHE[name]


def slow_unless(keep, names):
    """`names`, those for which `keep(name)` is false marked slow.

    The costliest checks run by default on the entries that exercise distinct code; the
    rest join in `make test-all`, so the default run stays within its time budget.
    """
    return [n if keep(n) else pytest.param(n, marks=pytest.mark.slow) for n in names]


#: The entries whose cheap per-entry checks (tests/models/test_contract.py: shapes, seeds,
#: config and checkpoint round trip) run by default: every entry of the other families,
#: and of the flows, whose four variants per class tests/models/flows/test_flows.py also
#: covers, the class representatives and an unconditional vector and image RealNVP. The
#: rest join under -m slow (together ~110 s of the default run on this 2-core machine).
CONTRACT_DEFAULT = frozenset([name for name in ZOO if name not in TINY_FLOWS]
                             + [name for name in REPRESENTATIVE if name in TINY_FLOWS]
                             + [name for name in ("real_nvp_vector", "real_nvp_image") if name in TINY_FLOWS])
