"""Coupling flows (NICE, RealNVP, Glow, neural spline flows) from one set of pieces.

Every coupling flow here is a stack of *steps*, organized in *levels* for images:

- vectors `(D,)`: `steps_per_level` steps on the whole vector (one level);
- images `(H, W, C)`: per level, in the data -> latent direction,
  `[checkerboard steps] -> squeeze -> [channel steps] -> factor out half the channels`,
  the last level keeping all its channels (Dinh et al. 2017, arXiv:1605.08803, sec. 3.6;
  Kingma & Dhariwal 2018, arXiv:1807.03039, fig. 2).

Two step styles cover the four papers:

- "alternating" (NICE, RealNVP): a step is one coupling; the mask alternates between
  steps so every element is transformed; images use checkerboard masks before the
  squeeze and channel masks after it.
- "mixing" (Glow, neural spline flows): a step is ActNorm -> invertible 1x1 convolution
  (LU) -> coupling with a channel mask; the learned mixing replaces mask alternation.

A subclass only chooses the step style and the elementwise transformer (additive,
affine, rational-quadratic spline).
"""

import numpy as np

from tfgen.backend import keras, tf, tfb
from tfgen.models.flows.bijectors import ActNorm, Chain, FactorOut, MaskedCoupling, squeeze
from tfgen.models.flows.networks import ActNormParameters, LUParameters, coupling_network
from tfgen.serialization import attribute_config
from tfgen.models.flows.base import FlowModel
from tfgen.errors import UserError


def half_mask(event_shape, parity):
    """Keeps the first (parity 0) or second (parity 1) half of the last axis unchanged."""
    size = event_shape[-1]
    first_half = np.arange(size) < size // 2
    keep = first_half if parity % 2 == 0 else ~first_half
    return np.broadcast_to(keep, event_shape).astype(np.float32)


def checkerboard_mask(event_shape, parity):
    """Keeps pixels with `(row + column) % 2 == parity` unchanged, in every channel."""
    height, width, channels = event_shape
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    keep = (rows + columns) % 2 == parity % 2
    return np.broadcast_to(keep[:, :, None], event_shape).astype(np.float32)


def squeezed_shape(shape):
    """`(H, W, C) -> (H/2, W/2, 4C)`, the shape after `tfgen.models.flows.bijectors.squeeze`."""
    height, width, channels = shape
    if height % 2 or width % 2:
        raise UserError(f"cannot squeeze an image of odd size {height}x{width}: use fewer levels")
    return (height // 2, width // 2, 4 * channels)


class CouplingStep(keras.layers.Layer):
    """One coupling layer: a fixed mask, a conditioner network and a transformer.

    Args:
      mask: 0/1 array of the step's event shape (1 = unchanged).
      transformer: elementwise transformer (`tfgen.models.flows.bijectors.transformers`).
      hidden_units, num_hidden_layers: size of the conditioner network.
    """

    def __init__(self, mask, transformer, hidden_units, num_hidden_layers, **kwargs):
        super().__init__(**kwargs)
        self.mask = mask
        self.transformer = transformer
        self.network = coupling_network(
            mask.shape, hidden_units, num_hidden_layers, transformer.num_params, name="network"
        )

    def bijector(self, condition_features, initialize=False):
        del initialize  # nothing data-initialized in a plain coupling

        def parameters_fn(masked):
            params = self.network(masked, condition=condition_features)
            return tf.reshape(params, tf.concat([tf.shape(masked), [self.transformer.num_params]], 0))

        return MaskedCoupling(self.mask, parameters_fn, self.transformer, name=self.name)


class MixingCouplingStep(keras.layers.Layer):
    """Glow's step: ActNorm, then an invertible 1x1 convolution, then a coupling.

    Args:
      event_shape: the step's event shape (last axis = channels).
      parity: which channel half the coupling leaves unchanged.
      seed: seed of the 1x1 convolution's initial rotation.
      transformer, hidden_units, num_hidden_layers: as in `CouplingStep`.
    """

    def __init__(self, event_shape, parity, seed, transformer, hidden_units, num_hidden_layers, **kwargs):
        super().__init__(**kwargs)
        channels = event_shape[-1]
        self.actnorm = ActNormParameters([channels], name="actnorm")
        self.mixing = LUParameters(channels, seed=seed, name="mixing")
        self.coupling = CouplingStep(
            half_mask(event_shape, parity), transformer, hidden_units, num_hidden_layers, name="coupling"
        )

    def bijector(self, condition_features, initialize=False):
        # Listed in data -> latent order (a Chain inverts its first element first).
        return Chain(
            [
                ActNorm(self.actnorm, initialize=initialize),
                tfb.ScaleMatvecLU(self.mixing.lower_upper, self.mixing.permutation),
                self.coupling.bijector(condition_features),
            ],
            name=self.name,
        )


class CouplingFlow(FlowModel):
    """Base of the coupling flows; subclasses set `step_style` and pass a transformer.

    Args:
      data_spec: a `DataSpec` (or dict); vectors `(D,)` with D >= 2 or images `(H, W, C)`.
      transformer: the elementwise transformer every coupling uses.
      num_levels: image levels (each but the last squeezes and factors out half the
        channels, so H and W must be divisible by 2**(number of squeezes)). Vectors
        always use one level.
      steps_per_level: couplings (or Glow steps) per level and per resolution.
      hidden_units: width of the conditioner MLP / channels of the conditioner ResNet.
      num_hidden_layers: hidden layers of the MLP / residual blocks of the ResNet.
      **kwargs: `FlowModel` arguments (`condition_dim`, `logit_alpha`, `name`).
    """

    #: "alternating" (NICE, RealNVP) or "mixing" (Glow, neural spline flows).
    step_style = "alternating"
    #: whether a learned elementwise scale sits on the latent side (NICE's scaling layer).
    final_scale = False

    def __init__(
        self, data_spec, transformer, num_levels=1, steps_per_level=4, hidden_units=32, num_hidden_layers=2, **kwargs
    ):
        super().__init__(data_spec, **kwargs)
        self.transformer = transformer
        self.num_levels = int(num_levels)
        self.steps_per_level = int(steps_per_level)
        self.hidden_units = int(hidden_units)
        self.num_hidden_layers = int(num_hidden_layers)
        shape = self.data_spec.event_shape
        if len(shape) == 1 and shape[0] < 2:
            raise UserError(f"{type(self).__name__} couples halves of a vector: needs D >= 2, got {shape}")
        if len(shape) == 1 and self.num_levels != 1:
            raise UserError("vector flows have a single level: set num_levels=1")
        # === Layers ===
        # levels[i] = (steps before the squeeze, steps after it); `_level_plan[i]` holds
        # the matching static facts (shape, squeezed?, channels kept for the next level).
        self.levels = []
        self._level_plan = []
        self._next_mixing_seed = 0
        for level in range(self.num_levels):
            last = level == self.num_levels - 1
            pre, squeezed, post = self._make_level(shape, level, last)
            level_shape = squeezed_shape(shape) if squeezed else shape
            kept = None if last else level_shape[-1] // 2
            self.levels.append([pre, post])
            self._level_plan.append({"shape": shape, "squeezed": squeezed, "kept_channels": kept})
            if not last:
                if not squeezed:
                    raise UserError("a level that factors out channels must squeeze first")
                shape = level_shape[:2] + (kept,)
        if self.final_scale:
            self.latent_scale = ActNormParameters(self.data_spec.event_shape, name="latent_scale")
        self._actnorm_data_init = False

    # === Architecture ===
    def _steps(self, event_shape, level, kind):
        """`steps_per_level` steps on `event_shape`; kind is "half" or "checkerboard"."""
        steps = []
        for parity in range(self.steps_per_level):
            name = f"level_{level}_{kind}_{parity}"
            if self.step_style == "mixing":
                steps.append(
                    MixingCouplingStep(
                        event_shape, parity, self._next_mixing_seed, self.transformer, self.hidden_units,
                        self.num_hidden_layers, name=name,
                    )
                )
                self._next_mixing_seed += 1
            else:
                mask = (checkerboard_mask if kind == "checkerboard" else half_mask)(event_shape, parity)
                steps.append(CouplingStep(mask, self.transformer, self.hidden_units, self.num_hidden_layers, name=name))
        return steps

    def _make_level(self, shape, level, last):
        """(steps before the squeeze, squeeze?, steps after it) for one level."""
        if len(shape) == 1:
            return self._steps(shape, level, "half"), False, []
        if self.step_style == "mixing":
            return [], True, self._steps(squeezed_shape(shape), level, "half")
        if last:
            return self._steps(shape, level, "checkerboard"), False, []
        return self._steps(shape, level, "checkerboard"), True, self._steps(squeezed_shape(shape), level, "half")

    def _level_bijector(self, level, condition_features, initialize):
        pre, post = self.levels[level]
        plan = self._level_plan[level]
        build = lambda steps: [step.bijector(condition_features, initialize) for step in steps]  # noqa: E731
        # Data -> latent order: pre steps, squeeze, post steps, factor out, unsqueeze.
        chain = build(pre)
        if plan["squeezed"]:
            chain.append(tfb.Invert(squeeze(plan["shape"])))
        chain += build(post)
        if plan["kept_channels"] is not None:
            inner = self._level_bijector(level + 1, condition_features, initialize)
            chain.append(FactorOut(inner, plan["kept_channels"]))
        if plan["squeezed"]:
            chain.append(squeeze(plan["shape"]))
        return Chain(chain, name=f"level_{level}")

    def _flow_bijector(self, condition_features):
        initialize = self._actnorm_data_init
        flow = self._level_bijector(0, condition_features, initialize)
        if not self.final_scale:
            return flow
        return Chain([flow, ActNorm(self.latent_scale)])

    def training_log_prob(self, x, condition=None, training=True, seed=None):
        """As `FlowModel`, and in training the first batch initializes every ActNorm."""
        # `training` is a Python bool from `train_step`/`call`; anything else means inference.
        self._actnorm_data_init = training is True
        try:
            return super().training_log_prob(x, condition, training, seed)
        finally:
            self._actnorm_data_init = False

    # === Config ===
    def get_config(self):
        names = ("num_levels", "steps_per_level", "hidden_units", "num_hidden_layers")
        return {**super().get_config(), **attribute_config(self, names), **self.transformer.get_config()}

