"""RealNVP and NICE: coupling flows with alternating masks."""

from tfgen.models.flows.bijectors import AdditiveTransformer, AffineTransformer
from tfgen.models.base import register
from tfgen.models.flows.coupling import CouplingFlow


@register
class RealNVP(CouplingFlow):
    """Real-valued non-volume preserving flow: affine couplings with alternating masks.

    Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP",
    arXiv:1605.08803. Each coupling keeps `x_b` and maps the rest to

        y = x * exp(s(x_b)) + t(x_b),    log|det| = sum s(x_b),

    with `s` soft-clamped to `(-log_scale_bound, log_scale_bound)`. Images use
    checkerboard masks, squeeze, channel masks and factor out half the channels per
    level; vectors alternate which half is kept.

    Args:
      data_spec: a `DataSpec` (or dict).
      log_scale_bound: bound on |s|.
      **kwargs: `CouplingFlow` arguments (`num_levels`, `steps_per_level`,
        `hidden_units`, `num_hidden_layers`, `condition_dim`, `logit_alpha`, `name`).

    Example:
      model = RealNVP({"event_shape": [2]}, steps_per_level=6, hidden_units=64)
      model.compile(keras.optimizers.Adam(1e-3)); model.fit(dataset)
    """

    step_style = "alternating"

    def __init__(self, data_spec, log_scale_bound=3.0, **kwargs):
        super().__init__(data_spec, AffineTransformer(log_scale_bound), **kwargs)


@register
class NICE(CouplingFlow):
    """Non-linear independent components estimation: additive couplings, then a scaling.

    Dinh, Krueger & Bengio 2014, arXiv:1410.8516. Each coupling is volume preserving,

        y = x + t(x_b),    log|det| = 0,

    and a learned elementwise scale on the latent side (the paper's "scaling layer")
    gives the flow its only non-zero log-determinant, `sum log_scale`.

    Args:
      data_spec: a `DataSpec` (or dict).
      **kwargs: `CouplingFlow` arguments.
    """

    step_style = "alternating"
    final_scale = True

    def __init__(self, data_spec, **kwargs):
        super().__init__(data_spec, AdditiveTransformer(), **kwargs)
