"""A `tfb.Chain` that hashes by identity."""

from tfgen.backend import tfb
from tfgen.models.flows.bijectors.base import IdentityEquality


class Chain(IdentityEquality, tfb.Chain):
    """`tfb.Chain`, compared and hashed by identity (see `IdentityEquality`)."""
