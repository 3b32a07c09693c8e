"""Pure-Python definitions shared by models, exports, the server's clients and scoring.

Nothing here imports TensorFlow: readers of SavedModels (the client, `tfgen score`, the
conformance checks) use these names without loading any model code. See
docs/architecture.md, "The model contract" and "The SavedModel contract".
"""

import dataclasses
import enum
from typing import Any, Callable, Optional, Tuple


class LogProbKind(str, enum.Enum):
    """What a model's `log_prob` means, stored in every export's metadata.

    - `exact`: log p(x), the exact density (continuous data) or probability (discrete
      data) of x under the model (flows on continuous data, autoregressive models).
    - `dequantized_lower_bound`: a continuous density on discrete data, dequantized:
      a deterministic K-draw importance-weighted estimate whose expectation is a lower
      bound on log P(x) (flows on quantized data).
    - `importance_weighted_bound`: an importance-weighted evidence lower bound over
      K posterior samples (latent-variable models: VAEs; Burda et al. 2016).
    - `probability_flow`: log p(x) of the model's probability-flow ODE (Song et al. 2021),
      the density of the data smoothed by the smallest noise level, integrated by the
      solver and divergence (exact, or Hutchinson's with fixed probes) in the export's
      config (`ode_*`): an estimate, deterministic per row (score models).
    - `variational_bound`: a diffusion model's variational lower bound on log P(x) of
      the levels (Ho et al. 2020 eq. 5: prior KL, T - 1 denoising KLs, and a discrete
      decoder on the levels; on continuous data a Gaussian decoder density), computed
      exactly over every t with fixed noise, so deterministic and row-independent.
    - `none`: the model has no tractable likelihood (GANs); no `log_prob` signature.
    """

    EXACT = "exact"
    DEQUANTIZED_LOWER_BOUND = "dequantized_lower_bound"
    IMPORTANCE_WEIGHTED_BOUND = "importance_weighted_bound"
    PROBABILITY_FLOW = "probability_flow"
    VARIATIONAL_BOUND = "variational_bound"
    NONE = "none"

    def __str__(self):
        return self.value

    @property
    def has_log_prob(self):
        return self is not LogProbKind.NONE


#: The tfgen.json format: 2 added the describe signature, latent_shape and stochastic_encoder;
#: 3 added the reconstruct signature, encode's mean and scale, log_prob's elbo (for
#: importance-weighted bounds) and log_prob_samples; 4 added the classify signature
#: of class-conditional likelihood models (and training_data.class_prior).
FORMAT_VERSION = 4
#: The oldest format readers understand (format 1 recorded no capabilities).
OLDEST_FORMAT_VERSION = 2


# === Capabilities: what a model can do, as readers of its export see it ===

@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What decides a model's signatures: its data and its declared capabilities.

    Built from a model (`of_model`, at export) or from an export's tfgen.json
    (`from_metadata`, by readers that hold no model code). Zero means "none" for the
    counts, so every field has one JSON and one tensor form.

    Args:
      event_shape: shape of one example.
      kind: "vector", "image" or "audio".
      levels: quantization levels of discrete data; 0 for continuous data.
      num_classes: classes of a conditional model; 0 if unconditional.
      sample_rate: samples per second of audio; 0 otherwise.
      log_prob_kind: a `LogProbKind`.
      has_latent: whether `decode` (and, with `has_encoder`, `encode`) exist.
      has_encoder: whether a model with a latent space also has `encode` (a GAN
        decodes codes but has no encoder).
      latent_shape: shape of one code `z` (empty without a latent space).
      stochastic_encoder: whether `encode` draws, keyed by a per-row seed.
      format_version: the tfgen.json format of the export (the current one for a model
        being exported): signatures and tensors added in a later format are not expected
        of an older export.
      variable_length: audio whose time axis has any length in the signatures; `sample`
        takes a `length` (autoregressive audio models).
      sample_inputs: the settings of an iterative sampler that `sample` takes beside the
        seed, as `(name, the model's default)` pairs: `steps` and `step_size` (score
        models' Langevin dynamics), `steps`, `eta` and `guidance_scale` (DDPM/DDIM);
        each is a defaulted input of the sample signature (`SIGNATURES`).
    """

    event_shape: Tuple[int, ...]
    kind: str = "vector"
    levels: int = 0
    num_classes: int = 0
    sample_rate: int = 0
    log_prob_kind: LogProbKind = LogProbKind.EXACT
    has_latent: bool = False
    has_encoder: bool = True
    latent_shape: Tuple[int, ...] = ()
    stochastic_encoder: bool = False
    format_version: int = FORMAT_VERSION
    variable_length: bool = False
    sample_inputs: Tuple[Tuple[str, float], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "event_shape", tuple(int(d) for d in self.event_shape))
        inputs = self.sample_inputs.items() if isinstance(self.sample_inputs, dict) else self.sample_inputs
        object.__setattr__(self, "sample_inputs", tuple((str(k), v) for k, v in inputs))
        object.__setattr__(self, "latent_shape", tuple(int(d) for d in self.latent_shape))
        object.__setattr__(self, "log_prob_kind", LogProbKind(self.log_prob_kind))
        for name in ("levels", "num_classes", "sample_rate", "format_version"):
            object.__setattr__(self, name, int(getattr(self, name) or 0))
        if self.has_latent and not self.latent_shape:
            raise ValueError("a model with a latent space needs its latent_shape")

    @property
    def conditional(self):
        return self.num_classes > 0

    @classmethod
    def of_model(cls, model):
        """The capabilities a tfgen `GenerativeModel` declares (its class attributes and
        data spec)."""
        spec = model.data_spec
        return cls(
            event_shape=spec.event_shape, kind=spec.kind, levels=spec.levels,
            num_classes=spec.num_classes, sample_rate=spec.sample_rate,
            log_prob_kind=model.log_prob_kind, has_latent=model.has_latent,
            has_encoder=getattr(model, "has_encoder", True),
            latent_shape=model.latent_shape if model.has_latent else (),
            stochastic_encoder=model.stochastic_encoder,
            variable_length=getattr(model, "variable_length", False),
            sample_inputs=getattr(model, "sample_inputs", {}),
        )

    @classmethod
    def from_metadata(cls, doc):
        """The capabilities recorded in an export's tfgen.json document."""
        spec = doc["data_spec"]
        try:
            return cls(
                event_shape=spec["event_shape"], kind=spec["kind"], levels=spec.get("levels"),
                num_classes=spec.get("num_classes"), sample_rate=spec.get("sample_rate"),
                log_prob_kind=doc["log_prob_kind"], has_latent=doc["has_latent"],
                has_encoder=doc.get("has_encoder", True),
                latent_shape=doc.get("latent_shape") or (),
                stochastic_encoder=doc.get("stochastic_encoder", False),
                format_version=doc.get("format_version", OLDEST_FORMAT_VERSION),
                variable_length=doc.get("variable_length", False),
                sample_inputs=doc.get("sample_inputs") or _diffusion_sample_inputs(doc),
            )
        except KeyError as e:
            raise ValueError(f"tfgen.json has no {e.args[0]!r}: not a tfgen export of format "
                             f">= {OLDEST_FORMAT_VERSION}") from None


# === The SavedModel contract: one table of signatures ===

class Shape(str, enum.Enum):
    """The shape of a signature tensor. Every tensor is batched on dim 0 (`[B, ...]`),
    since TF Serving's batching splits and joins requests along it."""

    ROW = "row"  #: `[B]`, one scalar per row
    EVENT = "event"  #: `[B, *event_shape]`, one example per row; variable-length audio: `[B, -1, ...]`
    LATENT = "latent"  #: `[B, *latent_shape]`, one code per row
    EVENT_RANK = "event_rank"  #: `[B, len(event_shape)]`, e.g. the event shape itself
    CLASSES = "classes"  #: `[B, num_classes]`, one value per row and class

    def dims(self, capabilities):
        """The shape with -1 for the batch dim, e.g. `[-1, 8, 8, 1]`."""
        return [-1] + {
            Shape.ROW: [],
            Shape.EVENT: [-1, *capabilities.event_shape[1:]] if capabilities.variable_length
            else list(capabilities.event_shape),
            Shape.LATENT: list(capabilities.latent_shape),
            Shape.EVENT_RANK: [len(capabilities.event_shape)],
            Shape.CLASSES: [capabilities.num_classes],
        }[self]


@dataclasses.dataclass(frozen=True)
class Example:
    """How the example rows of an input are made, for the warmup requests an export
    carries and for the conformance checks: `seeds` (the rows' int64 seeds), `classes`
    (seed mod num_classes), `fill` (`value` in every row), `output` (`value` =
    (signature, output): what an earlier signature returned, e.g. samples -> x),
    `examples` (the same, each row serialized as a `tf.train.Example` with the values
    flattened under feature `x`), `output_or_normal` (that output if the signature exists, else standard normal rows
    of the tensor's shape: codes of a model with a decoder and no encoder), or `default`
    (the input's default in every row; resolved to `fill` in the plan)."""

    kind: str
    value: Any = None

    def to_json(self, capabilities):
        if self.kind == "classes":
            return ["classes", capabilities.num_classes]
        return [self.kind] if self.value is None else [self.kind, self.value]


SEEDS = Example("seeds")
#: The `length` of example audio rows: short, since warmup only has to build the sampler
#: (a default-length warmup sample took seconds of a server's start-up).
EXAMPLE_LENGTH = 64
CLASSES = Example("classes")
#: The `steps` of example rows of iterative samplers: few, since warmup and the
#: conformance checks only have to run the sampler's loop.
EXAMPLE_STEPS = 2


def _always(capabilities):
    return True


def _conditional(capabilities):
    return capabilities.conditional


def _stochastic_encoder(capabilities):
    return capabilities.stochastic_encoder


def _encoder(capabilities):
    return capabilities.has_latent and capabilities.has_encoder


def _variable_length(capabilities):
    return capabilities.variable_length


def _sample_input(name):
    return lambda capabilities: name in dict(capabilities.sample_inputs)


def _sample_input_default(name):
    return lambda capabilities: dict(capabilities.sample_inputs)[name]


def _diffusion_sample_inputs(doc):
    """The sampler inputs of an export whose tfgen.json says `"diffusion_sampler": true`
    instead of listing its `sample_inputs` (the first DDPM exports)."""
    if not doc.get("diffusion_sampler"):
        return {}
    inputs = {"steps": DEFAULT_DIFFUSION_STEPS, "eta": 0.0}
    if doc["data_spec"].get("num_classes"):
        inputs["guidance_scale"] = 1.0
    return inputs


#: The default `steps` of a diffusion model's sampler (DDIM at 50 steps).
DEFAULT_DIFFUSION_STEPS = 50


def _bayes_classifier(capabilities):
    """Class-conditional likelihood models of fixed-size examples: p(y | x) from p(x | y) p(y)."""
    return (capabilities.conditional and capabilities.log_prob_kind.has_log_prob
            and not capabilities.variable_length)


#: TF Serving's method names: Predict serves any signature, Classify only a classification one.
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
#: The feature of a classify request's tf.train.Example holding the flattened example.
EXAMPLE_FEATURE = "x"


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One input or output of a signature.

    Args:
      name: the alias clients use (the SignatureDef key).
      dtype: numpy/TF dtype name: "int64", "int32", "float32" or "string".
      shape: a `Shape`.
      doc: what it holds.
      when: `Capabilities -> bool`, whether a model's signature has this tensor.
      default: inputs only: the value used when a request leaves the input out (stored
        as `SignatureDef.defaults`, one value broadcast to every row), or
        `Capabilities -> value` for a model's own default; None: required.
      example: inputs only: how example rows are made (an `Example`).
      value: outputs of constant signatures only: `Capabilities -> value of every row`.
      since: the tfgen.json format that added it (older exports lack it).
    """

    name: str
    dtype: str
    shape: Shape
    doc: str
    when: Callable = _always
    default: Any = None
    example: Optional[Example] = None
    value: Optional[Callable] = None
    since: int = 1


@dataclasses.dataclass(frozen=True)
class Signature:
    """One entry of the SavedModel contract: a signature some models export.

    `when(capabilities)` says which models have it; inputs and outputs have their own
    `when`. `since` is the tfgen.json format that added it. Inputs are listed required
    first, then defaulted (the order of the exported function's arguments). `method` is
    the SignatureDef's method_name, which decides the TF Serving API that serves it.
    """

    name: str
    doc: str
    inputs: Tuple[Tensor, ...]
    outputs: Tuple[Tensor, ...]
    when: Callable = _always
    since: int = 1
    method: str = PREDICT_METHOD

    def input(self, name):
        return _named(self.inputs, name, f"input of signature {self.name!r}")

    def output(self, name):
        return _named(self.outputs, name, f"output of signature {self.name!r}")


def present(item, capabilities):
    """Whether an export with `capabilities` has the `Signature` or `Tensor` `item`: its
    `when` holds and the export's format is not older than the item's `since`."""
    return capabilities.format_version >= item.since and item.when(capabilities)


def _named(tensors, name, what):
    for tensor in tensors:
        if tensor.name == name:
            return tensor
    raise KeyError(f"no {what} named {name!r}; there are {[t.name for t in tensors]}")


_CONDITION = Tensor("condition", "int32", Shape.ROW, "class id of each row (conditional models)",
                    when=_conditional, example=CLASSES)

#: What encode (and reconstruct, which encodes first) take.
_ENCODE_INPUTS = (
    Tensor("x", "float32", Shape.EVENT, "examples", example=Example("output", ("sample", "samples"))),
    _CONDITION,
    Tensor("seed", "int64", Shape.ROW, "the row's seed of the posterior draw", when=_stochastic_encoder,
           example=SEEDS),
)

#: The table. Signatures come in the order their example rows are made (a later one may
#: take an earlier one's output). Adding a signature is one entry here plus the function
#: that computes it (`tfgen.export.signatures.COMPUTE`).
SIGNATURES = {s.name: s for s in (
    Signature(
        "sample", "one sample per int64 seed: same seed, same sample, in any batch",
        inputs=(
            Tensor("seed", "int64", Shape.ROW, "the row's seed", example=SEEDS),
            _CONDITION,
            Tensor("temperature", "float32", Shape.ROW,
                   "scale of the latent draw; the default [1.0] broadcasts to every row", default=1.0,
                   example=Example("fill", 1.0)),
            Tensor("length", "int32", Shape.ROW,
                   "audio samples per row; the default [0] is the model's example length; a batch takes "
                   "its longest row's length; above the model's cap (max_length) an INVALID_ARGUMENT",
                   when=_variable_length, default=0, example=Example("fill", EXAMPLE_LENGTH)),
            Tensor("steps", "int32", Shape.ROW,
                   "iterative samplers: diffusion models' denoising steps, 1 .. the model's timesteps T (steps = "
                   "T with eta = 1 is ancestral DDPM sampling); score models' annealed Langevin steps per noise "
                   "level; default the model's (sample_inputs); <= 0 or above the model's cap is an "
                   "INVALID_ARGUMENT naming the cap",
                   when=_sample_input("steps"), default=_sample_input_default("steps"),
                   example=Example("fill", EXAMPLE_STEPS)),
            Tensor("step_size", "float32", Shape.ROW,
                   "score models: Langevin step size epsilon (scaled by sigma_i^2 / sigma_L^2 at "
                   "level i); default the model's; non-finite or <= 0 is an INVALID_ARGUMENT",
                   when=_sample_input("step_size"), default=_sample_input_default("step_size"),
                   example=Example("default")),
            Tensor("eta", "float32", Shape.ROW,
                   "diffusion models: DDIM's eta in [0, 1]: 0 deterministic (the default), 1 the DDPM posterior "
                   "variance", when=_sample_input("eta"), default=_sample_input_default("eta"),
                   example=Example("fill", 0.5)),
            Tensor("guidance_scale", "float32", Shape.ROW,
                   "conditional diffusion models: classifier-free guidance w, eps = eps(null) + w (eps(y) - "
                   "eps(null)); default [1.0] (no guidance), 0 unconditional; finite",
                   when=_sample_input("guidance_scale"), default=_sample_input_default("guidance_scale"),
                   example=Example("fill", 2.0)),
        ),
        outputs=(
            Tensor("samples", "float32", Shape.EVENT, "the samples, in the raw form log_prob accepts"),
            Tensor("log_prob", "float32", Shape.ROW,
                   "the model's log density of each sample (not of the tempered distribution); "
                   "exact likelihoods only, where it costs one more pass",
                   when=lambda c: c.log_prob_kind is LogProbKind.EXACT),
        ),
    ),
    Signature(
        "log_prob", "log p(x) in nats, as the model's log_prob_kind defines it",
        inputs=(Tensor("x", "float32", Shape.EVENT, "examples", example=Example("output", ("sample", "samples"))),
                _CONDITION),
        outputs=(Tensor("log_prob", "float32", Shape.ROW, "nats per example"),
                 Tensor("bits_per_dim", "float32", Shape.ROW, "-log_prob / (D ln 2)"),
                 Tensor("elbo", "float32", Shape.ROW,
                        "the evidence lower bound from the same posterior draws (nats; <= log_prob)",
                        when=lambda c: c.log_prob_kind is LogProbKind.IMPORTANCE_WEIGHTED_BOUND, since=3)),
        when=lambda c: c.log_prob_kind.has_log_prob,
    ),
    Signature(
        "encode", "x -> its code z (a draw keyed by the row's seed for stochastic encoders)",
        inputs=_ENCODE_INPUTS,
        outputs=(Tensor("z", "float32", Shape.LATENT, "codes"),
                 Tensor("mean", "float32", Shape.LATENT,
                        "mean of the encoder's Gaussian posterior q(z|x), before any posterior flow",
                        when=_stochastic_encoder, since=3),
                 Tensor("scale", "float32", Shape.LATENT,
                        "standard deviation of that Gaussian, per latent dimension",
                        when=_stochastic_encoder, since=3)),
        when=_encoder,
    ),
    Signature(
        "decode", "z -> x",
        inputs=(Tensor("z", "float32", Shape.LATENT, "codes", example=Example("output_or_normal", ("encode", "z"))),
                _CONDITION),
        outputs=(Tensor("x", "float32", Shape.EVENT, "examples, in raw form"),),
        when=lambda c: c.has_latent,
    ),
    Signature(
        "reconstruct", "x -> decode(encode(x)), the reconstruction (calls the encode and decode functions)",
        inputs=_ENCODE_INPUTS,
        outputs=(Tensor("x", "float32", Shape.EVENT, "reconstructions, in raw form"),),
        when=_encoder,
        since=3,
    ),
    Signature(
        "describe", "what a client needs to know of the model, one identical row per input row "
                    "(TF Serving's GetModelMetadata returns only the signatures, so this carries it)",
        inputs=(Tensor("rows", "int64", Shape.ROW, "any values: one description row per row", example=SEEDS),),
        outputs=(
            Tensor("kind", "string", Shape.ROW, "the data kind: vector, image or audio", value=lambda c: c.kind),
            Tensor("event_shape", "int64", Shape.EVENT_RANK, "shape of one example",
                   value=lambda c: list(c.event_shape)),
            Tensor("levels", "int64", Shape.ROW, "quantization levels of discrete data, 0 if continuous",
                   value=lambda c: c.levels),
            Tensor("num_classes", "int64", Shape.ROW, "classes of a conditional model, 0 if unconditional",
                   value=lambda c: c.num_classes),
            Tensor("log_prob_kind", "string", Shape.ROW, "what log_prob means (LogProbKind)",
                   value=lambda c: c.log_prob_kind.value),
            Tensor("sample_rate", "int64", Shape.ROW, "samples per second of audio, 0 otherwise",
                   value=lambda c: c.sample_rate),
        ),
    ),
    Signature(
        "classify", "TF Serving's Classify API: Bayes' rule over the classes, p(y | x) = p(x | y) p(y) / p(x), "
                    "with p(y) the training data's class frequencies (tfgen.json training_data.class_prior); "
                    "a classification signature may have only the outputs classes and scores, so the "
                    "marginal log p(x) comes from log_prob and that prior (tfgen.scoring.classify)",
        inputs=(Tensor("inputs", "string", Shape.ROW,
                       f"serialized tf.train.Examples, the flattened example under float_list feature "
                       f"{EXAMPLE_FEATURE!r}", example=Example("examples", ("sample", "samples"))),),
        outputs=(Tensor("classes", "string", Shape.CLASSES, "the class ids as text, \"0\" .. \"C-1\""),
                 Tensor("scores", "float32", Shape.CLASSES, "p(y | x) of each class")),
        when=_bayes_classifier,
        since=4,
        method=CLASSIFY_METHOD,
    ),
)}

#: What TF Serving calls when a request names no signature; the same function as this one.
SERVING_DEFAULT = "serving_default"
DEFAULT_SIGNATURE = "sample"


def check_table(signatures):
    """Raises unless examples read only outputs of earlier signatures and defaulted
    inputs come last (run on `SIGNATURES` at import)."""
    seen = {}
    for signature in signatures:
        defaulted = [t.default is not None for t in signature.inputs]
        if defaulted != sorted(defaulted):
            raise AssertionError(f"signature {signature.name!r}: defaulted inputs must come last")
        for tensor in signature.inputs:
            if tensor.example is None:
                raise AssertionError(f"input {signature.name}/{tensor.name} has no example")
            if tensor.example.kind in ("output", "output_or_normal", "examples"):
                source, output = tensor.example.value
                if output not in seen.get(source, ()):
                    raise AssertionError(f"input {signature.name}/{tensor.name} reads {source}/{output}, "
                                         "which no earlier signature returns")
        seen[signature.name] = {t.name for t in signature.outputs}


check_table(SIGNATURES.values())


def signature_plan(capabilities):
    """The signatures a model with `capabilities` exports, resolved to plain JSON data:

        [{"name", "inputs": [{"name", "dtype", "shape", "default", "example"}],
          "outputs": [{"name", "dtype", "shape", "value"?}]}, ...]

    in table order, shapes with -1 for the batch dim. This is what the conformance
    child process (which imports no tfgen) checks an export against and makes example
    rows from. `serving_default` is not listed: it is `sample`.
    """
    plan = []
    for signature in SIGNATURES.values():
        if not present(signature, capabilities):
            continue
        inputs = []
        for t in signature.inputs:
            if present(t, capabilities):
                default = t.default(capabilities) if callable(t.default) else t.default
                example = (["fill", default] if t.example.kind == "default"
                           else t.example.to_json(capabilities))
                inputs.append({"name": t.name, "dtype": t.dtype, "shape": t.shape.dims(capabilities),
                               "default": default, "example": example})
        outputs = []
        for t in signature.outputs:
            if present(t, capabilities):
                output = {"name": t.name, "dtype": t.dtype, "shape": t.shape.dims(capabilities)}
                if t.value is not None:
                    output["value"] = t.value(capabilities)
                outputs.append(output)
        plan.append({"name": signature.name, "inputs": inputs, "outputs": outputs})
    return plan


def read_description(outputs):
    """`{name: value}` from the outputs of a `describe` call (`{name: array}`, any number
    of identical rows): int, str, or a tuple for the event shape.

    Raises:
      ValueError: an output is missing, so the model is not a tfgen export of this format.
    """
    described = {}
    for tensor in SIGNATURES["describe"].outputs:
        if tensor.name not in outputs:
            raise ValueError(f"the describe signature has no output {tensor.name!r} (it has "
                             f"{sorted(outputs)}): not a tfgen export of format >= {OLDEST_FORMAT_VERSION}")
        row = outputs[tensor.name][0]
        if tensor.shape is Shape.EVENT_RANK:
            described[tensor.name] = tuple(int(d) for d in row)
        elif tensor.dtype == "string":
            described[tensor.name] = row.decode() if isinstance(row, bytes) else str(row)
        else:
            described[tensor.name] = int(row)
    return described
