"""The serving signatures of a tfgen SavedModel (docs/architecture.md, "The SavedModel
contract").

Which signatures a model has, with which named, typed, batched inputs and outputs, is
the table `tfgen.contract.SIGNATURES`; this module computes them (`COMPUTE`, one
function per table entry) and traces each once:

    sample    seed int64 [B], condition int32 [B]*, temperature float32 [B] (default 1.0),
              length int32 [B] (audio; default 0: the example length),
              steps int32 [B], step_size float32 [B] (iterative samplers; default: the model's)
              -> samples float32 [B, *event], log_prob float32 [B]**
    log_prob  x float32 [B, *event], condition*  -> log_prob, bits_per_dim, elbo**** float32 [B]
    encode    x, condition*, seed*** -> z float32 [B, *latent]    (models with a latent space)
              (+ mean, scale float32 [B, *latent] of q(z|x)***)
    decode    z, condition*  -> x float32 [B, *event]             (models with a latent space)
    reconstruct  x, condition*, seed*** -> x float32 [B, *event]  (decode of encode)
    describe  rows int64 [B] -> kind, event_shape, levels, num_classes, log_prob_kind,
              sample_rate, one identical row per input row        (every model)
    classify  inputs string [B] (tf.train.Examples) -> classes string [B, C], scores [B, C]
              (class-conditional likelihood models; method_name TF Serving's classify, set
              after saving)
    serving_default = sample

    * conditional models only; ** exact likelihoods only; *** stochastic encoders only;
    **** importance-weighted bounds only (latent-variable models).

Traced once, shared. Each signature is one `tf.function` (autograph off: tracing never
re-reads source files, which a long-running process may see change). `sample`'s
log_prob calls the `log_prob` function, and while `sample` is traced the model's own
calls of `decode`/`encode`/`log_prob` (a flow's `sample` decodes a latent draw) run
those signatures' functions too, so the SavedModel holds each computation once and
calls it, instead of every signature holding its own trace of the whole model;
`reconstruct` likewise calls the `encode` and `decode` functions.

Temperature default. `tf.saved_model.save` writes `SignatureDef.defaults` (and a
`PlaceholderWithDefault` in the graph) for a `tf.function` argument whose Python default
is a tensor. The default must fit the placeholder's shape `[None]`, and a `[B]`-shaped
default cannot exist when B is unknown, so the stored default is `[1.0]` (shape `[1]`)
and the function broadcasts `temperature` to `[B]`. Clients either omit `temperature`
or send one value per row; a `[1]` temperature with B > 1 also works when called
directly but defeats server-side batching, which concatenates inputs along dim 0.
"""

import contextlib
import inspect

from tfgen.backend import tf
import numpy as np

from tfgen.contract import (DEFAULT_SIGNATURE, EXAMPLE_FEATURE, SERVING_DEFAULT, SIGNATURES, Capabilities,
                            signature_plan)
from tfgen.metrics.bits import bits_per_dim

#: The model method each signature shares while `sample` is traced, and the output that
#: is the method's value. The method takes the signature's inputs in table order.
_MODEL_METHODS = {"decode": "x", "encode": "z", "log_prob": "log_prob"}


class SignatureModule(tf.Module):
    """A `tf.Module` with one `tf.function` per signature of `model`.

    It tracks the model's variables, not the Keras model, so the SavedModel holds no
    Keras objects at all: a module holding a Keras model loaded with
    `tf.saved_model.load` yet failed in the TF1 Session loader (docs/architecture.md,
    "The SavedModel contract"). The model must be built (see `build_model`) before
    tracing, so tracing never creates variables.

    Args:
      model: a built tfgen `GenerativeModel`.
      class_prior: conditional models: p(y), one probability per class (the training
        data's class frequencies); None: uniform. Baked into classify.
    """

    def __init__(self, model, class_prior=None):
        super().__init__(name="tfgen_signatures")
        self.capabilities = Capabilities.of_model(model)
        tracer = _Tracer(model, signature_plan(self.capabilities),
                         checked_class_prior(class_prior, self.capabilities.num_classes))
        self._signatures = tracer.functions
        # The variables the signatures capture must be reachable from this module.
        self.model_variables = exported_variables(model)
        for name, function in self._signatures.items():
            setattr(self, name, function)
        tracer.trace()

    def signatures(self):
        """The dict `tf.saved_model.save(..., signatures=...)` takes."""
        return {**self._signatures, SERVING_DEFAULT: self._signatures[DEFAULT_SIGNATURE]}

    def call(self, name, inputs):
        """Runs signature `name` in this process on `{input: array}`; numpy outputs.

        Inputs the request leaves out take their defaults, as a served model does.
        """
        outputs = self._signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


def exported_variables(model):
    """The variables an export holds, in the model's order: all but the metric
    accumulators (serving never reads them)."""
    metric_variables = {v.ref() for metric in model.metrics for v in metric.variables}
    return [v for v in model.variables if v.ref() not in metric_variables]


def checked_class_prior(class_prior, num_classes):
    """`class_prior` as a list of `num_classes` probabilities summing to 1 (None: uniform
    over `num_classes`; [] for an unconditional model)."""
    import numpy as np

    if not num_classes:
        return []
    if class_prior is None:
        return [1.0 / num_classes] * num_classes
    prior = np.asarray(class_prior, np.float64)
    if prior.shape != (num_classes,) or not np.all(prior > 0) or abs(prior.sum() - 1) > 1e-6:
        raise ValueError(f"class_prior must be {num_classes} positive probabilities summing to 1, "
                         f"got {list(class_prior)}")
    return prior.tolist()


def class_frequencies(labels, num_classes):
    """The class prior of a training split: each class's frequency, every class counted
    at least once (a class absent from the split keeps a non-zero prior)."""
    import numpy as np

    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)[:num_classes]
    counts = np.maximum(counts, 1)
    return (counts / counts.sum()).tolist()


def build_model(model):
    """Runs every exported method once eagerly on one row, creating all variables."""
    capabilities = Capabilities.of_model(model)
    seed = tf.constant([0], tf.int64)
    condition = tf.zeros([1], tf.int32) if capabilities.conditional else None
    x = model.sample(seed, tf.constant([1.0]), condition)
    if capabilities.log_prob_kind.has_log_prob:
        model.log_prob(x, condition)
    if capabilities.has_latent and capabilities.has_encoder:
        z = model.encode(x, condition, seed=seed if capabilities.stochastic_encoder else None)
        model.decode(z, condition)
    elif capabilities.has_latent:
        model.decode(tf.zeros([1, *capabilities.latent_shape]), condition)


# === What each signature computes ===
# `tracer` gives the model (`tracer.model`, its methods as they were before any sharing),
# the signature's resolved plan entry and `tracer.call` for another signature.

def _sample(tracer, seed, temperature, condition=None, **sampler_inputs):
    temperature = tf.broadcast_to(temperature, tf.shape(seed))
    # length (audio models), steps, eta, guidance_scale (diffusion models): per row
    sampler_inputs = {name: tf.broadcast_to(value, tf.shape(seed)) for name, value in sampler_inputs.items()
                      if value is not None}
    with tracer.sharing():
        samples = tracer.model.sample(seed, temperature, condition, **sampler_inputs)
    outputs = {"samples": samples}
    if tracer.has_output("sample", "log_prob"):
        outputs["log_prob"] = tracer.call("log_prob", x=samples, condition=condition)["log_prob"]
    return outputs


def _log_prob(tracer, x, condition=None):
    if tracer.has_output("log_prob", "elbo"):
        bounds = tracer.model.importance_weighted_bounds(x, condition)
        log_prob, extra = bounds["log_prob"], {"elbo": bounds["elbo"]}
    else:
        log_prob, extra = tracer.method("log_prob")(x, condition), {}
    num_dims = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), log_prob.dtype)  # audio has any length
    return {"log_prob": log_prob, "bits_per_dim": bits_per_dim(log_prob, num_dims), **extra}


def _encode(tracer, x, condition=None, seed=None):
    outputs = {"z": tracer.method("encode")(x, condition, seed=seed)}
    if tracer.has_output("encode", "mean"):
        outputs["mean"], outputs["scale"] = tracer.model.posterior(x, condition)
    return outputs


def _decode(tracer, z, condition=None):
    return {"x": tracer.method("decode")(z, condition)}


def _reconstruct(tracer, x, condition=None, seed=None):
    """decode(encode(x)): calls of the two signature functions, not copies of them."""
    z = tracer.call("encode", x=x, condition=condition, seed=seed)["z"]
    return {"x": tracer.call("decode", z=z, condition=condition)["x"]}


def _classify(tracer, inputs):
    """TF Serving's Classify: parse the Examples, log p(x | y) for every class in one call
    of the log_prob function on the rows repeated per class (or of the model's
    `classify_log_prob`, where its `classify_estimate` says it has a cheaper estimate),
    then Bayes' rule with the baked-in prior: scores = p(y | x). (One function: each
    calling function lists every captured variable, and the shipped graphs stay under 1 MB.)"""
    event_shape = tracer.entry("log_prob")["inputs"][0]["shape"][1:]
    features = tf.io.parse_example(inputs, {EXAMPLE_FEATURE: tf.io.FixedLenFeature(
        [int(np.prod(event_shape))], tf.float32)})
    x = tf.reshape(features[EXAMPLE_FEATURE], [-1, *event_shape])
    num_classes = len(tracer.class_prior)
    rows = tf.shape(x)[0]
    repeated = tf.repeat(x, num_classes, axis=0)  # row-major: row 0 with every class first
    classes = tf.tile(tf.range(num_classes, dtype=tf.int32), [rows])
    if tracer.model.classify_estimate is None:
        conditional = tracer.call("log_prob", x=repeated, condition=classes)["log_prob"]
    else:
        conditional = tracer.model.classify_log_prob(repeated, classes)
    conditional = tf.reshape(conditional, [rows, num_classes])
    joint = conditional + tf.math.log(tf.constant([tracer.class_prior], tf.float32))
    labels = tf.constant([[str(c) for c in range(num_classes)]])
    return {"classes": tf.tile(labels, [rows, 1]), "scores": tf.nn.softmax(joint, axis=1)}


def _describe(tracer, rows):
    """The constant description, one row per input row."""
    outputs = {}
    for output in tracer.entry("describe")["outputs"]:
        value = tf.constant([output["value"]], tf.as_dtype(output["dtype"]))
        multiples = tf.concat([tf.shape(rows)[:1], tf.ones([value.shape.rank - 1], tf.int32)], 0)
        outputs[output["name"]] = tf.tile(value, multiples)
    return outputs


#: signature name -> `(tracer, **inputs) -> {output: tensor}`; one per table entry.
COMPUTE = {"sample": _sample, "log_prob": _log_prob, "encode": _encode, "decode": _decode,
           "reconstruct": _reconstruct, "describe": _describe, "classify": _classify}
if set(COMPUTE) != set(SIGNATURES):
    raise AssertionError(f"signatures without a computation: {sorted(set(SIGNATURES) ^ set(COMPUTE))}")


class _Tracer:
    """Builds the `tf.function` of each planned signature and traces them in an order
    where the ones `sample` shares exist first."""

    def __init__(self, model, plan, class_prior=()):
        self.model = model
        self.class_prior = list(class_prior)
        self._plan = {entry["name"]: entry for entry in plan}
        # Bound before any sharing patches the instance, so a shared function's own
        # body runs the model's method, not itself.
        self._methods = {name: getattr(model, name) for name in _MODEL_METHODS if name in self._plan}
        self.functions = {name: self._function(entry) for name, entry in self._plan.items()}

    def entry(self, name):
        return self._plan[name]

    def method(self, name):
        return self._methods[name]

    def has_output(self, signature, output):
        return any(o["name"] == output for o in self._plan[signature]["outputs"])

    def call(self, name, **inputs):
        """Calls signature `name`'s function (a call op in the graph being traced)."""
        names = [i["name"] for i in self._plan[name]["inputs"]]
        stray = sorted(k for k, v in inputs.items() if v is not None and k not in names)
        if stray:
            raise ValueError(f"signature {name!r} of {self.model.name} takes no {stray}")
        missing = [n for n in names if inputs.get(n) is None]
        if missing:
            raise ValueError(f"signature {name!r} of {self.model.name} needs {missing}")
        return self.functions[name](*[inputs[n] for n in names])

    @contextlib.contextmanager
    def sharing(self):
        """While the block traces, the model's own `decode`/`encode`/`log_prob` calls run
        the signature functions (instance attributes shadow the methods; Keras'
        attribute tracking is bypassed, so nothing is tracked or left behind)."""
        patched = []
        for name, output in _MODEL_METHODS.items():
            if name in self._methods:
                object.__setattr__(self.model, name, self._shared(name, output))
                patched.append(name)
        try:
            yield
        finally:
            for name in patched:
                object.__delattr__(self.model, name)

    def _shared(self, name, output):
        parameters = [t.name for t in SIGNATURES[name].inputs]

        def method(*args, **kwargs):
            inputs = dict(zip(parameters, args), **kwargs)
            return self.call(name, **inputs)[output]
        return method

    def _function(self, entry):
        """The `tf.function` of one plan entry: named, batched input specs; a Python
        signature whose tensor defaults become `SignatureDef.defaults`."""
        compute = COMPUTE[entry["name"]]
        specs, parameters = [], []
        for i in entry["inputs"]:
            dtype = tf.as_dtype(i["dtype"])
            specs.append(tf.TensorSpec([None if d < 0 else d for d in i["shape"]], dtype, name=i["name"]))
            default = inspect.Parameter.empty if i["default"] is None else tf.constant([i["default"]], dtype)
            parameters.append(inspect.Parameter(i["name"], inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                default=default))
        python_signature = inspect.Signature(parameters)

        def signature_function(*args, **kwargs):
            bound = python_signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return compute(self, **bound.arguments)

        signature_function.__signature__ = python_signature
        signature_function.__name__ = entry["name"]  # names the graph functions
        return tf.function(signature_function, input_signature=specs, autograph=False)

    def trace(self):
        """Traces every function; those `sample` shares first, so none is first traced
        while the model's methods are shadowed."""
        order = sorted(self.functions, key=lambda name: name == DEFAULT_SIGNATURE)
        for name in order:
            self.functions[name].get_concrete_function()
