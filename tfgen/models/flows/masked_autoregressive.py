"""Autoregressive flows (MAF, IAF, autoregressive neural spline flow) on MADE networks."""

from tfgen.backend import tfb
from tfgen.models.flows.bijectors import AffineTransformer, Chain, RationalQuadraticTransformer
from tfgen.models.flows.networks import MADE
from tfgen.serialization import attribute_config
from tfgen.models.base import register
from tfgen.models.flows.base import FlowModel

class AutoregressiveFlow(FlowModel):
    """Base of the autoregressive flows: `num_steps` MADE-conditioned transforms.

    Each step is `tfb.MaskedAutoregressiveFlow` with a `bijector_fn` that applies the
    elementwise transformer with parameters from a MADE network of its input, and the
    order of dimensions is reversed between steps. Images are flattened to vectors
    (`tfb.Reshape`) around the stack, so any event shape works.

    Args:
      data_spec: a `DataSpec` (or dict).
      transformer: the elementwise transformer (affine, spline).
      num_steps: number of autoregressive transforms.
      hidden_units: width of every MADE hidden layer (>= D - 1 keeps every
        dependency reachable).
      num_hidden_layers: masked hidden layers per MADE.
      **kwargs: `FlowModel` arguments (`condition_dim`, `logit_alpha`, `name`).
    """

    #: False: sequential sampling, one-pass density (MAF). True: the reverse (IAF).
    inverse_autoregressive = False

    def __init__(self, data_spec, transformer, num_steps=4, hidden_units=32, num_hidden_layers=2, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.transformer = transformer
        self.num_steps = int(num_steps)
        self.hidden_units = int(hidden_units)
        self.num_hidden_layers = int(num_hidden_layers)
        # === Layers ===
        self.made_networks = [
            MADE(self.data_spec.num_dims, self.hidden_units, self.num_hidden_layers, transformer.num_params, name=f"made_{i}")
            for i in range(self.num_steps)
        ]

    def _autoregressive_step(self, made, condition_features):
        def bijector_fn(inputs, **unused_kwargs):
            return self.transformer.bijector(made(inputs, condition=condition_features))

        step = tfb.MaskedAutoregressiveFlow(bijector_fn=bijector_fn)
        return tfb.Invert(step) if self.inverse_autoregressive else step

    def _flow_bijector(self, condition_features):
        num_dims = self.data_spec.num_dims
        event_shape = list(self.data_spec.event_shape)
        reverse = tfb.Permute(permutation=list(reversed(range(num_dims))))
        # Data -> latent order (a Chain inverts its first element first).
        chain = [tfb.Reshape(event_shape_out=event_shape, event_shape_in=[num_dims])]
        for i, made in enumerate(self.made_networks):
            if i:
                chain.append(reverse)
            chain.append(self._autoregressive_step(made, condition_features))
        chain.append(tfb.Reshape(event_shape_out=[num_dims], event_shape_in=event_shape))
        return Chain(chain, name="autoregressive_flow")

    def get_config(self):
        names = ("num_steps", "hidden_units", "num_hidden_layers")
        return {**super().get_config(), **attribute_config(self, names), **self.transformer.get_config()}

@register
class MAF(AutoregressiveFlow):
    """Masked autoregressive flow: one-pass density, D-pass sampling.

    Papamakarios, Pavlakou & Murray 2017, arXiv:1705.07057. In the data -> latent
    direction, with `s_i, t_i` from a MADE of `x_{<i}`,

        z_i = (x_i - t_i(x_{<i})) * exp(-s_i(x_{<i})),    log|det dz/dx| = -sum_i s_i,

    `s` soft-clamped to `(-log_scale_bound, log_scale_bound)`.

    Args:
      data_spec: a `DataSpec` (or dict).
      log_scale_bound: bound on |s|.
      **kwargs: `AutoregressiveFlow` arguments (`num_steps`, `hidden_units`,
        `num_hidden_layers`, `condition_dim`, `logit_alpha`, `name`).
    """

    def __init__(self, data_spec, log_scale_bound=3.0, **kwargs):
        super().__init__(data_spec, AffineTransformer(log_scale_bound), **kwargs)

@register
class IAF(AutoregressiveFlow):
    """Inverse autoregressive flow: one-pass sampling, D-pass density.

    Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive Flow",
    arXiv:1606.04934. The inverse of a MAF step: in the latent -> data direction, with
    `s_i, t_i` from a MADE of `z_{<i}`,

        x_i = (z_i - t_i(z_{<i})) * exp(-s_i(z_{<i})),    log|det dx/dz| = -sum_i s_i,

    so `sample`/`decode` take one network pass per step, `log_prob`/`encode` D passes.

    Args:
      data_spec: a `DataSpec` (or dict).
      log_scale_bound: bound on |s|.
      **kwargs: `AutoregressiveFlow` arguments.
    """

    inverse_autoregressive = True

    def __init__(self, data_spec, log_scale_bound=3.0, **kwargs):
        super().__init__(data_spec, AffineTransformer(log_scale_bound), **kwargs)

@register
class AutoregressiveNeuralSplineFlow(AutoregressiveFlow):
    """Rational-quadratic neural spline flow, autoregressive variant (RQ-NSF (AR)).

    Durkan et al. 2019, arXiv:1906.04032. A MAF whose elementwise transform is a
    monotone rational-quadratic spline on `[-bound, bound]` (identity outside):

        z_i = RQS^-1(x_i; theta_i(x_{<i})),    theta_i from a MADE.

    Args:
      data_spec: a `DataSpec` (or dict).
      num_bins: spline segments K (3K - 1 MADE outputs per dimension).
      bound: half-width of the spline's interval.
      min_bin_size, min_slope: keep the spline well-conditioned.
      **kwargs: `AutoregressiveFlow` arguments.
    """

    def __init__(self, data_spec, num_bins=8, bound=4.0, min_bin_size=1e-2, min_slope=1e-2, **kwargs):
        transformer = RationalQuadraticTransformer(num_bins, bound, min_bin_size, min_slope)
        super().__init__(data_spec, transformer, **kwargs)
