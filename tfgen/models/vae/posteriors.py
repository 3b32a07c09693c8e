"""Posterior flows: richer q(z | x) than a diagonal Gaussian, each step amortized (its
parameters computed from the encoder's features `h`).

A step maps `(z [B, L], h [B, H]) -> (z', log |det dz'/dz| [B])`, and

    log q(z_K | x) = log N(z_0; mu(x), diag sigma(x)^2) - sum_k log |det dz_k/dz_{k-1}|.

Planar and radial flows (Rezende & Mohamed 2015) and Sylvester flows (van den Berg et al.
2018) are invertible but have no closed-form inverse, so their density is tractable only
for points they produced: fine for a posterior, which only ever scores its own draws,
but useless as a stand-alone density model, which must score given data. That is why
tfgen offers them here and not as flows of their own. Householder flows (Tomczak &
Welling 2016) are volume-preserving rotations; IAF (Kingma et al. 2016) is the masked
autoregressive flow in its fast-sampling direction.
"""

from tfgen.backend import keras, tf
from tfgen.models.flows.networks.made import MADE

_EPSILON = 1e-6


def _log_abs(value):
    return tf.math.log(tf.abs(value) + _EPSILON)


class Planar(keras.layers.Layer):
    """z' = z + u tanh(w^T z + b), with u adjusted so that w^T u >= -1 (invertible)."""

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.amortized = keras.layers.Dense(2 * latent_dim + 1, kernel_initializer="zeros", name="parameters")

    def call(self, z, h):
        u, w, b = tf.split(self.amortized(h), [self.latent_dim, self.latent_dim, 1], axis=-1)
        wu = tf.reduce_sum(w * u, -1, keepdims=True)
        u = u + (tf.nn.softplus(wu) - 1.0 - wu) * w / (tf.reduce_sum(w * w, -1, keepdims=True) + _EPSILON)
        activation = tf.tanh(tf.reduce_sum(w * z, -1, keepdims=True) + b)
        psi = (1.0 - activation ** 2) * w
        return z + u * activation, _log_abs(1.0 + tf.reduce_sum(u * psi, -1))


class Radial(keras.layers.Layer):
    """z' = z + beta (z - z0) / (alpha + |z - z0|), with beta >= -alpha (invertible)."""

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.amortized = keras.layers.Dense(latent_dim + 2, kernel_initializer="zeros", name="parameters")

    def call(self, z, h):
        centre, raw_alpha, raw_beta = tf.split(self.amortized(h), [self.latent_dim, 1, 1], axis=-1)
        alpha = tf.nn.softplus(raw_alpha) + _EPSILON
        beta = tf.nn.softplus(raw_beta) - alpha
        offset = z - centre
        radius = tf.sqrt(tf.reduce_sum(offset ** 2, -1, keepdims=True) + _EPSILON)
        inverse_distance = 1.0 / (alpha + radius)
        log_det = ((self.latent_dim - 1) * _log_abs(1.0 + beta * inverse_distance)
                   + _log_abs(1.0 + beta * inverse_distance - beta * radius * inverse_distance ** 2))
        return z + beta * inverse_distance * offset, tf.squeeze(log_det, -1)


def _reflect(z, v):
    """(I - 2 v v^T / |v|^2) z, row by row."""
    return z - 2.0 * v * tf.reduce_sum(v * z, -1, keepdims=True) / (tf.reduce_sum(v * v, -1, keepdims=True) + _EPSILON)


class Householder(keras.layers.Layer):
    """z' = (I - 2 v v^T / |v|^2) z: a reflection, volume-preserving (log det 0)."""

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.vector = keras.layers.Dense(latent_dim, name="vector")

    def call(self, z, h):
        return _reflect(z, self.vector(h)), tf.zeros(tf.shape(z)[:1])


class Sylvester(keras.layers.Layer):
    """Orthogonal Sylvester flow (van den Berg et al. 2018), Q from Householder reflections:

        z' = z + Q R tanh(R~ Q^T z + b),    log det = sum_i log |1 + R_ii R~_ii tanh'(.)_i|

    with R, R~ upper triangular and their diagonals in (-1, 1) (tanh), so the determinant
    stays positive.

    Args:
      latent_dim: L.
      num_reflections: Householder reflections composing Q.
    """

    def __init__(self, latent_dim, num_reflections=4, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.num_reflections = num_reflections
        self.reflections = keras.layers.Dense(num_reflections * latent_dim, name="reflections")
        self.triangles = keras.layers.Dense(2 * latent_dim * latent_dim + latent_dim,
                                            kernel_initializer="zeros", name="triangles")

    def call(self, z, h):
        size = self.latent_dim
        vectors = tf.split(self.reflections(h), self.num_reflections, axis=-1)
        r_flat, r_tilde_flat, b = tf.split(self.triangles(h), [size * size, size * size, size], axis=-1)
        upper = tf.linalg.band_part(tf.ones([size, size]), 0, -1) - tf.eye(size)

        def triangle(flat):
            matrix = tf.reshape(flat, [-1, size, size])
            diagonal = tf.tanh(tf.linalg.diag_part(matrix))
            return matrix * upper + tf.linalg.diag(diagonal), diagonal

        r, r_diagonal = triangle(r_flat)
        r_tilde, r_tilde_diagonal = triangle(r_tilde_flat)
        rotated = z  # Q^T z = H_k ... H_1 z, since each reflection is symmetric
        for v in vectors:
            rotated = _reflect(rotated, v)
        activation = tf.tanh(tf.linalg.matvec(r_tilde, rotated) + b)
        update = tf.linalg.matvec(r, activation)
        for v in reversed(vectors):  # Q y = H_1 ... H_k y
            update = _reflect(update, v)
        log_det = tf.reduce_sum(_log_abs(1.0 + r_diagonal * r_tilde_diagonal * (1.0 - activation ** 2)), -1)
        return z + update, log_det


class InverseAutoregressive(keras.layers.Layer):
    """IAF step (Kingma et al. 2016): [m, s] = MADE(z; h), sigma = sigmoid(s + 2),
    z' = sigma z + (1 - sigma) m, log det = sum log sigma; the order is reversed after
    every step so each dimension is eventually updated from all the others.

    Args:
      latent_dim: L.
      hidden_units: MADE width.
    """

    def __init__(self, latent_dim, hidden_units, **kwargs):
        super().__init__(**kwargs)
        self.made = MADE(latent_dim, hidden_units, 1, 2, name="made")

    def call(self, z, h):
        shift, raw_gate = tf.unstack(self.made(z, condition=h), axis=-1)
        # +2 starts the gate near 0.88: each step begins close to the identity.
        gate = tf.sigmoid(raw_gate + 2.0)
        return tf.reverse(gate * z + (1.0 - gate) * shift, [-1]), tf.reduce_sum(tf.math.log(gate + _EPSILON), -1)


POSTERIORS = {
    "gaussian": "a diagonal Gaussian (no flow)",
    "iaf": "inverse autoregressive flow steps (MADE)",
    "planar": "planar flow steps",
    "radial": "radial flow steps",
    "householder": "Householder reflections",
    "sylvester": "orthogonal Sylvester flow steps (Householder Q)",
}


def posterior_flow(name, latent_dim, num_steps, hidden_units):
    """The steps of posterior `name` (a key of POSTERIORS; "gaussian" has none)."""
    if name == "gaussian":
        return []
    build = {
        "iaf": lambda i: InverseAutoregressive(latent_dim, hidden_units, name=f"iaf_{i}"),
        "planar": lambda i: Planar(latent_dim, name=f"planar_{i}"),
        "radial": lambda i: Radial(latent_dim, name=f"radial_{i}"),
        "householder": lambda i: Householder(latent_dim, name=f"householder_{i}"),
        "sylvester": lambda i: Sylvester(latent_dim, name=f"sylvester_{i}"),
    }[name]
    return [build(i) for i in range(num_steps)]
