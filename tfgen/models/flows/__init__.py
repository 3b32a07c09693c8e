"""Normalizing flows built from TFP bijectors and tfgen tf_keras networks.

Importing this package registers every flow class (`tfgen.models.base.register`):

- coupling flows (`coupling.py`): `NICE`, `RealNVP` (alternating masks; checkerboard
  and channel masks, squeeze and factor-out on images), `Glow`, `NeuralSplineFlow`
  (ActNorm, LU 1x1 convolution, affine or rational-quadratic coupling);
- autoregressive flows (`autoregressive.py`): `MAF`, `IAF`,
  `AutoregressiveNeuralSplineFlow` (MADE conditioners; images are flattened).

All take a `data_spec` (vector `(D,)` or image `(H, W, C)`, continuous or discrete),
and a class condition when `data_spec.num_classes` is set: `log_prob(x, condition)`,
`sample(seed, temperature, condition)`, `encode(x, condition)`, `decode(z, condition)`
with `condition` int32 `[B]`; `fit` takes `(x, condition)` pairs.
"""

from tfgen.models.flows.masked_autoregressive import IAF, MAF, AutoregressiveFlow, AutoregressiveNeuralSplineFlow
from tfgen.models.flows.base import FlowModel
from tfgen.models.flows.coupling import CouplingFlow
from tfgen.models.flows.glow import Glow, NeuralSplineFlow
from tfgen.models.flows.real_nvp import NICE, RealNVP

__all__ = ["IAF", "MAF", "AutoregressiveFlow", "AutoregressiveNeuralSplineFlow", "FlowModel", "CouplingFlow", "Glow", "NeuralSplineFlow", "NICE", "RealNVP"]
