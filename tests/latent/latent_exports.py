"""What the latent-space tests share (imported by their conftest.py and test modules;
a module of its own, since every test folder has a `conftest`):

- `flow`: a conditional flow on 4x4 discrete images (deterministic encoder);
- `vae`: the linear Gaussian VAE of tests/toy_models.py on 2-D vectors (stochastic
  encoder with a posterior);
- `gan`: the adversarial toy model (no latent signatures at all);
- `decode_only`: a plain SavedModel with a `decode` signature only, as a GAN exporting
  its generator would have (written here, since no tfgen family exports one);
  `write_decode_only(..., encode=True)` adds `encode` (still no `reconstruct`, as tfgen
  exports older than that signature have).
"""

import json
import os


NAMES = {"flow": "toy_diagonal_flow_image_conditional", "vae": "toy_latent_gaussian", "gan": "toy_adversarial"}
DECODE_ONLY_LATENT = 3
#: A shipped flow (encode, decode and reconstruct).
SHIPPED_FLOW = os.path.join(os.path.dirname(__file__), "..", "..", "saved_models", "digits_realnvp")


def write_decode_only(path, recorded_latent_shape=(DECODE_ONLY_LATENT,), encode=False):
    """x = 2 z + 1 for z [B, 3] (and with `encode`, z = (x - 1) / 2); tfgen.json records
    `recorded_latent_shape`."""
    import tensorflow as tf

    spec = [tf.TensorSpec([None, DECODE_ONLY_LATENT], tf.float32)]
    module = tf.Module()
    module.decode = tf.function(lambda z: {"x": 2.0 * z + 1.0}, input_signature=spec)
    signatures = {"decode": module.decode, "serving_default": module.decode}
    if encode:
        module.encode = tf.function(lambda x: {"z": (x - 1.0) / 2.0}, input_signature=spec)
        signatures["encode"] = module.encode
    tf.saved_model.save(module, path, signatures=signatures)
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "assets.extra", "tfgen.json"), "w") as f:
        json.dump({"data_spec": {"event_shape": [DECODE_ONLY_LATENT], "kind": "vector"},
                   "latent_shape": list(recorded_latent_shape)}, f)
    return path


