"""Shared network pieces: coupling networks, MADE, variables of parameterized bijectors."""

from tfgen.models.flows.networks.coupling import CouplingMLP, CouplingResNet, coupling_network
from tfgen.models.flows.networks.parameters import ActNormParameters, LUParameters
from tfgen.models.flows.networks.made import MADE, MaskedDense

__all__ = ["CouplingMLP", "CouplingResNet", "coupling_network", "ActNormParameters", "LUParameters", "MADE", "MaskedDense"]
