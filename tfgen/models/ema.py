"""Exponential moving averages of a network's weights, for sampling (GAN generators,
diffusion denoisers).

The average is a second network of the same architecture that only `update` writes; as
a tracked part of the model it is in every checkpoint, and exports sample from it.
"""

from tfgen.backend import tf
from tfgen.errors import UserError


def checked_decay(decay):
    """`ema_decay` as a float in [0, 1) (0: no average), or a one-line error."""
    value = float(decay)
    if not 0.0 <= value < 1.0:
        raise UserError(f"ema_decay must be in [0, 1), got {decay!r}")
    return value


def start(average_network, network):
    """Sets the average to the network's current weights (every weight, batch-norm
    statistics too)."""
    for average, weight in zip(average_network.weights, network.weights):
        average.assign(weight)


def update(average_network, network, decay, step):
    """average <- d * average + (1 - d) * weight for every weight of `network`, with
    d = min(decay, (1 + t) / (10 + t)) at optimizer step t, so early averages are not
    dominated by the initial weights.

    The update runs once in cross-replica context (`merge_call`): the network's weights
    are the same on every replica after its synchronized update, and a mirrored variable
    is written there for all replicas at once."""

    def assign(strategy):
        t = tf.cast(step, tf.float32)
        d = tf.minimum(decay, (1.0 + t) / (10.0 + t))
        for average, weight in zip(average_network.weights, network.weights):
            average.assign(d * average + (1.0 - d) * tf.convert_to_tensor(weight))

    tf.distribute.get_replica_context().merge_call(assign)
