"""Glow and the coupling neural spline flow: ActNorm, invertible 1x1 convolution, coupling."""

from tfgen.models.flows.bijectors import AffineTransformer, RationalQuadraticTransformer
from tfgen.models.base import register
from tfgen.models.flows.coupling import CouplingFlow


@register
class Glow(CouplingFlow):
    """Glow: steps of ActNorm, LU-parametrized 1x1 convolution and affine coupling.

    Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1 Convolutions",
    arXiv:1807.03039. In the data -> latent direction one step is

        h = (x - b) * exp(-a)                 ActNorm, a, b set from the first batch
        h = W^-1 h,  W = P L U                 1x1 convolution, log|det| = HW sum log|U_ii|
        h_2 = (h_2 - t(h_1)) * exp(-s(h_1))    affine coupling on channel halves

    with `s` soft-clamped to `(-log_scale_bound, log_scale_bound)`. Images squeeze
    before every level and factor out half the channels after each but the last.
    On vectors the 1x1 convolution is a learned `D x D` LU matrix.

    ActNorm's data-dependent initialization runs on the first batch `fit` sees (in
    `training_log_prob`); `log_prob`, `sample` and exports never write variables.

    Args:
      data_spec: a `DataSpec` (or dict).
      log_scale_bound: bound on |s|.
      **kwargs: `CouplingFlow` arguments (`num_levels`, `steps_per_level`,
        `hidden_units`, `num_hidden_layers`, `condition_dim`, `logit_alpha`, `name`).
    """

    step_style = "mixing"

    def __init__(self, data_spec, log_scale_bound=3.0, **kwargs):
        super().__init__(data_spec, AffineTransformer(log_scale_bound), **kwargs)


@register
class NeuralSplineFlow(CouplingFlow):
    """Rational-quadratic neural spline flow with couplings (RQ-NSF (C)).

    Durkan, Bekasov, Murray & Papamakarios 2019, "Neural Spline Flows", arXiv:1906.04032.
    Glow's step structure (ActNorm, 1x1 convolution) with the affine coupling replaced by
    a monotone rational-quadratic spline on `[-bound, bound]` (identity outside), whose
    `num_bins` widths, heights and interior slopes come from the conditioner network:

        y_2 = RQS(x_2; theta(x_1)),    log|det| = sum log RQS'(x_2; theta(x_1)).

    Args:
      data_spec: a `DataSpec` (or dict).
      num_bins: spline segments K (3K - 1 parameters per element).
      bound: half-width of the spline's interval.
      min_bin_size, min_slope: keep the spline well-conditioned.
      **kwargs: `CouplingFlow` arguments.
    """

    step_style = "mixing"

    def __init__(self, data_spec, num_bins=8, bound=4.0, min_bin_size=1e-2, min_slope=1e-2, **kwargs):
        transformer = RationalQuadraticTransformer(num_bins, bound, min_bin_size, min_slope)
        super().__init__(data_spec, transformer, **kwargs)
