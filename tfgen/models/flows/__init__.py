"""Normalizing flows built from TFP bijectors and tfgen tf_keras networks.

Importing this package registers every flow class (`tfgen.models.base.register`).
"""

from tfgen.models.flows.autoregressive import IAF, MAF, AutoregressiveFlow, AutoregressiveNeuralSplineFlow  # noqa: F401
from tfgen.models.flows.base import FlowModel  # noqa: F401
from tfgen.models.flows.coupling import CouplingFlow  # noqa: F401
from tfgen.models.flows.glow import Glow, NeuralSplineFlow  # noqa: F401
from tfgen.models.flows.real_nvp import NICE, RealNVP  # noqa: F401
