"""A `tfb.Chain` that hashes by identity."""

from tfgen.backend import tfb
from tfgen.bijectors.base import IdentityEquality


class Chain(IdentityEquality, tfb.Chain):
    """`tfb.Chain`, compared and hashed by identity (see `IdentityEquality`)."""
