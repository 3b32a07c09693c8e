"""Normalizing flows built from TFP bijectors and tfgen tf_keras networks."""

from tfgen.models.flows.base import FlowModel  # noqa: F401
from tfgen.models.flows.real_nvp import NICE, RealNVP  # noqa: F401
