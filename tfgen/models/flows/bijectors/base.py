"""What tfgen's bijectors share: they live for one call and compare by identity."""

from tfgen.backend import tfb


class IdentityEquality:
    """Compares and hashes by identity instead of TFP's parameter-wise equality.

    TFP hashes a bijector by hashing its parameters, recursively, on every cache lookup;
    for nested multi-scale flows that made one eager `log_prob` cost seconds. tfgen
    rebuilds its bijectors (closing over its networks) on every call, so identity is the
    right notion of equality.
    """

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other


class CallScopedBijector(IdentityEquality, tfb.Bijector):
    """Base of tfgen's bijectors: parameters live in Keras layers, not in the bijector.

    Args:
      forward_min_event_ndims: rank of the smallest event the bijector transforms.
      is_constant_jacobian: whether the log-det does not depend on the input.
      name: bijector name.
    """

    def __init__(self, forward_min_event_ndims, name, is_constant_jacobian=False, validate_args=False):
        super().__init__(
            forward_min_event_ndims=forward_min_event_ndims,
            is_constant_jacobian=is_constant_jacobian,
            validate_args=validate_args,
            name=name,
        )

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}
