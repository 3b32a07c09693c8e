"""Elementwise invertible maps ("transformers") whose parameters a network predicts.

A coupling layer or an autoregressive flow is a conditioner network plus one of these:
given parameters `[..., P]` for every element, `bijector(params)` is an elementwise
(`forward_min_event_ndims == 0`) TFP bijector. Each transformer is the identity when its
parameters are zero, so zero-initialized conditioner outputs give an identity flow.
"""

import math

from tfgen.backend import tf, tfb


class AdditiveTransformer:
    """`y = x + t` (NICE, Dinh et al. 2014, arXiv:1410.8516). One parameter, unit Jacobian."""

    num_params = 1

    def bijector(self, params):
        return tfb.Shift(params[..., 0])

    def get_config(self):
        return {}


class AffineTransformer:
    """`y = x * exp(s) + t` with `s = bound * tanh(raw / bound)` (RealNVP, arXiv:1605.08803).

    The soft clamp keeps `|s| < bound`, so a coupling can never blow up or collapse a
    dimension by more than `exp(bound)` (the same role as Glow's sigmoid scale).

    Args:
      log_scale_bound: the bound on |s|.
    """

    num_params = 2

    def __init__(self, log_scale_bound=3.0):
        self.log_scale_bound = float(log_scale_bound)

    def bijector(self, params):
        log_scale = self.log_scale_bound * tf.tanh(params[..., 1] / self.log_scale_bound)
        return tfb.Chain([tfb.Shift(params[..., 0]), tfb.Scale(log_scale=log_scale)])

    def get_config(self):
        return {"log_scale_bound": self.log_scale_bound}


class RationalQuadraticTransformer:
    """A monotone rational-quadratic spline on [-bound, bound], identity outside.

    Durkan et al. 2019, "Neural Spline Flows", arXiv:1906.04032. `num_bins` bin widths
    and heights (softmax, with a minimum size) and `num_bins - 1` interior knot slopes
    (softplus, with a minimum) give `3 * num_bins - 1` parameters per element. The slope
    offset makes zero parameters the identity: equal bins and unit slopes.

    Args:
      num_bins: number of spline segments K.
      bound: half-width B of the spline's interval.
      min_bin_size: share of 2B spread evenly over the bins (each bin gets at least
        2B * min_bin_size / K).
      min_slope: smallest knot slope.
    """

    def __init__(self, num_bins=8, bound=4.0, min_bin_size=1e-2, min_slope=1e-2):
        self.num_bins = int(num_bins)
        self.bound = float(bound)
        self.min_bin_size = float(min_bin_size)
        self.min_slope = float(min_slope)
        self.num_params = 3 * self.num_bins - 1
        # softplus(offset) + min_slope == 1
        self._slope_offset = math.log(math.expm1(1.0 - self.min_slope))

    def _bin_sizes(self, raw):
        # A `min_bin_size` share of the interval is spread evenly, the rest by softmax,
        # so the sizes sum exactly to 2B and none is smaller than 2B * min_bin_size / K.
        uniform_share = self.min_bin_size / self.num_bins
        return 2.0 * self.bound * (uniform_share + (1.0 - self.min_bin_size) * tf.math.softmax(raw, axis=-1))

    def bijector(self, params):
        k = self.num_bins
        return tfb.RationalQuadraticSpline(
            bin_widths=self._bin_sizes(params[..., :k]),
            bin_heights=self._bin_sizes(params[..., k : 2 * k]),
            knot_slopes=tf.math.softplus(params[..., 2 * k :] + self._slope_offset) + self.min_slope,
            range_min=-self.bound,
        )

    def get_config(self):
        return {
            "num_bins": self.num_bins,
            "bound": self.bound,
            "min_bin_size": self.min_bin_size,
            "min_slope": self.min_slope,
        }
