"""The serving signatures of a tfgen SavedModel (DESIGN.md section 4).

Every input and output is batched on dim 0 (TF Serving's batching splits and joins
along it) and has an explicit name:

    sample    seed int64 [B], temperature float32 [B] (default 1.0), condition int32 [B]*
              -> samples float32 [B, *event], log_prob float32 [B]**
    log_prob  x float32 [B, *event], condition*  -> log_prob, bits_per_dim float32 [B]
    encode    x, condition*  -> z float32 [B, *latent]       (models with a latent space)
    decode    z, condition*  -> x float32 [B, *event]        (models with a latent space)
    serving_default = sample

    *  conditional models only;  ** models whose `log_prob_kind` is "exact", where the
    density of the returned sample comes with one more pass (flows, autoregressive).

The `sample` log_prob is the model's density of the returned sample, not of the tempered
distribution it was drawn from.

Temperature default. `tf.saved_model.save` writes `SignatureDef.defaults` (and a
`PlaceholderWithDefault` in the graph) for a `tf.function` argument whose Python default
is a tensor. The default must fit the placeholder's shape `[None]`, and a `[B]`-shaped
default cannot exist when B is unknown, so the stored default is `[1.0]` (shape `[1]`)
and the function broadcasts `temperature` to `[B]`. Clients either omit `temperature`
or send one value per row; a `[1]` temperature with B > 1 also works when called
directly but defeats server-side batching, which concatenates inputs along dim 0.
"""

from tfgen.backend import tf
from tfgen.metrics.bits import bits_per_dim

SERVING_DEFAULT = "serving_default"

#: The contract: signature -> (input names, output names), before per-model omissions.
CONTRACT = {
    "sample": (("seed", "temperature", "condition"), ("samples", "log_prob")),
    "log_prob": (("x", "condition"), ("log_prob", "bits_per_dim")),
    "encode": (("x", "condition"), ("z",)),
    "decode": (("z", "condition"), ("x",)),
}

DEFAULT_TEMPERATURE = 1.0


def _batched(event_shape, dtype, name):
    return tf.TensorSpec([None, *event_shape], dtype, name=name)


class SignatureModule(tf.Module):
    """A `tf.Module` with one `tf.function` per signature of `model`.

    It tracks the model's variables, not the Keras model, so the SavedModel holds no
    Keras objects at all: DESIGN.md section 8 measured a module holding a Keras model
    that loaded with `tf.saved_model.load` yet failed in the TF1 Session loader. (With
    the zoo flows of today, attaching the model as well still passes the conformance
    checks, with "Skipping full serialization of TF-Keras layer" warnings.) The model
    must be built (see `build_model`) before tracing, so tracing never creates variables.

    Args:
      model: a built tfgen `GenerativeModel`.
    """

    def __init__(self, model):
        super().__init__(name="tfgen_signatures")
        self._signatures = _signature_functions(model)
        # The variables the signatures capture must be reachable from this module;
        # metric accumulators are left out, serving never reads them.
        metric_variables = {v.ref() for metric in model.metrics for v in metric.variables}
        self.model_variables = [v for v in model.variables if v.ref() not in metric_variables]
        for name, function in self._signatures.items():
            setattr(self, name, function)

    def signatures(self):
        """The dict `tf.saved_model.save(..., signatures=...)` takes."""
        return {**self._signatures, SERVING_DEFAULT: self._signatures["sample"]}


def signature_names(model):
    """The signature names `model` exports, `serving_default` excluded."""
    names = ["sample"]
    if model.log_prob_kind is not None:
        names.append("log_prob")
    if model.has_latent:
        names += ["encode", "decode"]
    return names


def build_model(model):
    """Runs every exported method once eagerly on one row, creating all variables."""
    spec = model.data_spec
    condition = tf.zeros([1], tf.int32) if spec.conditional else None
    x = model.sample(tf.constant([0], tf.int64), tf.constant([DEFAULT_TEMPERATURE]), condition)
    if model.log_prob_kind is not None:
        model.log_prob(x, condition)
    if model.has_latent:
        model.decode(model.encode(x, condition), condition)


def _signature_functions(model):
    """name -> `tf.function` with a fully named, batched input signature."""
    spec = model.data_spec
    event = spec.event_shape
    conditional = spec.conditional
    seed = _batched([], tf.int64, "seed")
    temperature = _batched([], tf.float32, "temperature")
    condition = [_batched([], tf.int32, "condition")] if conditional else []
    x = _batched(event, tf.float32, "x")
    with_sample_log_prob = model.log_prob_kind == "exact"

    def sample_outputs(seed, temperature, condition=None):
        temperature = tf.broadcast_to(temperature, tf.shape(seed))
        samples = model.sample(seed, temperature, condition)
        outputs = {"samples": samples}
        if with_sample_log_prob:
            outputs["log_prob"] = model.log_prob(samples, condition)
        return outputs

    def log_prob_outputs(x, condition=None):
        log_prob = model.log_prob(x, condition)
        return {"log_prob": log_prob, "bits_per_dim": bits_per_dim(log_prob, spec.num_dims)}

    # The temperature default must be a tensor for SignatureDef.defaults (see docstring),
    # and the last positional argument, so `condition` comes before it.
    default_temperature = tf.constant([DEFAULT_TEMPERATURE], tf.float32)
    if conditional:
        def sample(seed, condition, temperature=default_temperature):
            return sample_outputs(seed, temperature, condition)
    else:
        def sample(seed, temperature=default_temperature):
            return sample_outputs(seed, temperature)

    functions = {"sample": tf.function(sample, input_signature=[seed, *condition, temperature])}
    if model.log_prob_kind is not None:
        functions["log_prob"] = tf.function(log_prob_outputs, input_signature=[x, *condition])
    if model.has_latent:
        z = _batched(model.latent_shape, tf.float32, "z")
        functions["encode"] = tf.function(
            lambda x, condition=None: {"z": model.encode(x, condition)}, input_signature=[x, *condition]
        )
        functions["decode"] = tf.function(
            lambda z, condition=None: {"x": model.decode(z, condition)}, input_signature=[z, *condition]
        )
    return functions
