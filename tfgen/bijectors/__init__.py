"""TFP bijectors tfgen needs that TFP lacks (or lacks in the form tfgen's flows need)."""

from tfgen.bijectors.actnorm import ActNorm  # noqa: F401
from tfgen.bijectors.chain import Chain  # noqa: F401
from tfgen.bijectors.masked_coupling import MaskedCoupling  # noqa: F401
from tfgen.bijectors.multiscale import FactorOut, squeeze  # noqa: F401
from tfgen.bijectors.transformers import (  # noqa: F401
    AdditiveTransformer,
    AffineTransformer,
    RationalQuadraticTransformer,
)
