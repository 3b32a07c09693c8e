"""Shared network pieces: coupling networks, MADE, variables of parameterized bijectors."""

from tfgen.layers.coupling_networks import CouplingMLP, CouplingResNet, coupling_network  # noqa: F401
from tfgen.layers.flow_parameters import ActNormParameters, LUParameters  # noqa: F401
from tfgen.layers.made import MADE, MaskedDense  # noqa: F401
