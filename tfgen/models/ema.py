"""Exponential moving averages of a network's weights, for sampling (GANs, score and
diffusion models): the average is a second copy of the network, tracked by the model
(so checkpoints hold it) and written only here."""

from tfgen.backend import tf
from tfgen.errors import UserError


def check_ema_decay(decay):
    """`decay` as a float in [0, 1) (0: no average)."""
    decay = float(decay)
    if not 0.0 <= decay < 1.0:
        raise UserError(f"ema_decay must be in [0, 1), got {decay!r}")
    return decay


def start_average(average_network, network):
    """Starts the average at the network's weights (both built)."""
    for average, weight in zip(average_network.weights, network.weights):
        average.assign(weight)


def update_average(average_network, network, decay, step):
    """average <- d * average + (1 - d) * weight for every weight (batch-norm statistics
    too), d = min(decay, (1 + t) / (10 + t)) at optimizer step t, so early averages are
    not dominated by the initial weights.

    The update runs once in cross-replica context (`merge_call`): the network's weights
    are the same on every replica after its synchronized update, and a mirrored
    variable is written there for all replicas at once."""

    def update(strategy):
        t = tf.cast(step, tf.float32)
        d = tf.minimum(decay, (1.0 + t) / (10.0 + t))
        for average, weight in zip(average_network.weights, network.weights):
            average.assign(d * average + (1.0 - d) * tf.convert_to_tensor(weight))

    tf.distribute.get_replica_context().merge_call(update)
