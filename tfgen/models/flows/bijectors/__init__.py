"""TFP bijectors tfgen needs that TFP lacks (or lacks in the form tfgen's flows need)."""

from tfgen.models.flows.bijectors.actnorm import ActNorm
from tfgen.models.flows.bijectors.chain import Chain
from tfgen.models.flows.bijectors.masked_coupling import MaskedCoupling
from tfgen.models.flows.bijectors.multiscale import FactorOut, squeeze
from tfgen.models.flows.bijectors.transformers import (
    AdditiveTransformer,
    AffineTransformer,
    RationalQuadraticTransformer,
)

__all__ = ["ActNorm", "Chain", "MaskedCoupling", "FactorOut", "squeeze", "AdditiveTransformer", "AffineTransformer", "RationalQuadraticTransformer"]
