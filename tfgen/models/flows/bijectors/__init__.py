"""TFP bijectors tfgen needs that TFP lacks (or lacks in the form tfgen's flows need)."""

from tfgen.models.flows.bijectors.actnorm import ActNorm  # noqa: F401
from tfgen.models.flows.bijectors.chain import Chain  # noqa: F401
from tfgen.models.flows.bijectors.masked_coupling import MaskedCoupling  # noqa: F401
from tfgen.models.flows.bijectors.multiscale import FactorOut, squeeze  # noqa: F401
from tfgen.models.flows.bijectors.transformers import (  # noqa: F401
    AdditiveTransformer,
    AffineTransformer,
    RationalQuadraticTransformer,
)
