"""Shared network pieces: coupling networks, MADE, variables of parameterized bijectors."""

from tfgen.models.flows.networks.coupling import CouplingMLP, CouplingResNet, coupling_network  # noqa: F401
from tfgen.models.flows.networks.parameters import ActNormParameters, LUParameters  # noqa: F401
from tfgen.models.flows.networks.made import MADE, MaskedDense  # noqa: F401
