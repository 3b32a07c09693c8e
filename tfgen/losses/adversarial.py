"""GAN losses on discriminator outputs (logits or critic values), reduced by the mean.

Notation: D(x) is the discriminator's raw output (a logit for the minimax,
non-saturating and least-squares losses, a critic value for Wasserstein and hinge),
sigma the logistic function, x real data, G(z) generated data. Every function takes the
outputs, never the networks, except the two penalties, which need gradients of D.

References:
  [1] Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661.
  [2] Arjovsky et al. 2017, Wasserstein GAN, arXiv:1701.07875.
  [3] Gulrajani et al. 2017, Improved Training of Wasserstein GANs, arXiv:1704.00028.
  [4] Mao et al. 2017, Least Squares Generative Adversarial Networks, arXiv:1611.04076.
  [5] Lim & Ye 2017, Geometric GAN, arXiv:1705.02894; Miyato et al. 2018, arXiv:1802.05957.
  [6] Mescheder et al. 2018, Which Training Methods for GANs do actually Converge?,
      arXiv:1801.04406.
"""

from tfgen.backend import tf
from tfgen.errors import UserError

#: Added under the square root of a gradient norm, so the norm and its gradient stay
#: finite where the gradient is exactly zero.
NORM_EPSILON = 1e-12


def _mean(values):
    return tf.reduce_mean(tf.convert_to_tensor(values, tf.float32))


# === Minimax [1] ===
def minimax_discriminator_loss(real_outputs, generated_outputs):
    """The discriminator's side of the minimax game (binary cross-entropy):

        L_D = -E[log sigma(D(x))] - E[log(1 - sigma(D(G(z))))]
            = E[softplus(-D(x))] + E[softplus(D(G(z)))]
    """
    return _mean(tf.nn.softplus(-real_outputs)) + _mean(tf.nn.softplus(generated_outputs))


def minimax_generator_loss(generated_outputs):
    """The generator's side of the minimax game, which saturates when D wins:

        L_G = E[log(1 - sigma(D(G(z))))] = -E[softplus(D(G(z)))]
    """
    return -_mean(tf.nn.softplus(generated_outputs))


# === Non-saturating ("modified") [1] ===
def modified_discriminator_loss(real_outputs, generated_outputs):
    """Same as `minimax_discriminator_loss` (only the generator's loss changes)."""
    return minimax_discriminator_loss(real_outputs, generated_outputs)


def modified_generator_loss(generated_outputs):
    """The generator maximizes log D(G(z)) instead of minimizing log(1 - D(G(z))):

        L_G = -E[log sigma(D(G(z)))] = E[softplus(-D(G(z)))]
    """
    return _mean(tf.nn.softplus(-generated_outputs))


# === Wasserstein [2, 3] ===
def wasserstein_discriminator_loss(real_outputs, generated_outputs):
    """The critic estimates the Wasserstein-1 distance as a difference of means:

        L_D = E[D(G(z))] - E[D(x)]
    """
    return _mean(generated_outputs) - _mean(real_outputs)


def wasserstein_generator_loss(generated_outputs):
    """L_G = -E[D(G(z))]."""
    return -_mean(generated_outputs)


def safe_norm(values, axis):
    """sqrt(sum(values^2) + eps) over `axis`: the Euclidean norm, finite with a finite
    gradient at values = 0 (where d||v||/dv is 0/0)."""
    return tf.sqrt(tf.reduce_sum(tf.square(values), axis=axis) + NORM_EPSILON)


def _per_row_gradients(discriminator, inputs, condition=None):
    """(D(inputs), dD/dinputs) with one gradient row per input row."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = discriminator(inputs) if condition is None else discriminator(inputs, condition)
    return outputs, tape.gradient(outputs, inputs)  # of sum(outputs): row b only depends on input b


def wasserstein_gradient_penalty(discriminator, real_data, generated_data, seed=None, condition=None,
                                 target=1.0):
    """WGAN-GP's penalty [3] on random interpolates of real and generated rows:

        x_hat = alpha x + (1 - alpha) G(z),    alpha ~ U[0, 1] per row
        GP    = E[(||grad_x_hat D(x_hat)||_2 - target)^2]

    (alpha is uniform, not normal: keras-io#624.) The norm is `safe_norm`, so a zero
    gradient gives (sqrt(eps) - target)^2, never NaN.

    Args:
      discriminator: a callable `D(x)` (or `D(x, condition)` when `condition` is given).
      real_data, generated_data: `[B, ...]` batches of the same shape.
      seed: a shape-[2] int seed for alpha (stateless), or None for the global generator.
      condition: class ids passed to the discriminator, or None.
      target: the norm the gradients are pulled towards.
    """
    real_data = tf.convert_to_tensor(real_data, tf.float32)
    generated_data = tf.convert_to_tensor(generated_data, tf.float32)
    shape = tf.concat([tf.shape(real_data)[:1], tf.ones([tf.rank(real_data) - 1], tf.int32)], 0)
    alpha = (tf.random.uniform(shape) if seed is None else tf.random.stateless_uniform(shape, seed))
    interpolates = alpha * real_data + (1.0 - alpha) * generated_data
    _, gradients = _per_row_gradients(discriminator, interpolates, condition)
    axes = tf.range(1, tf.rank(gradients))
    return _mean(tf.square(safe_norm(gradients, axes) - target))


# === Least squares [4] ===
def least_squares_discriminator_loss(real_outputs, generated_outputs, real_label=1.0, generated_label=0.0):
    """L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2], with b = `real_label`,
    a = `generated_label` (the 0-1 coding of [4])."""
    return 0.5 * _mean(tf.square(real_outputs - real_label)) + 0.5 * _mean(tf.square(generated_outputs - generated_label))


def least_squares_generator_loss(generated_outputs, real_label=1.0):
    """L_G = 1/2 E[(D(G(z)) - c)^2], c = `real_label`."""
    return 0.5 * _mean(tf.square(generated_outputs - real_label))


# === Hinge [5] ===
def hinge_discriminator_loss(real_outputs, generated_outputs):
    """L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return _mean(tf.nn.relu(1.0 - real_outputs)) + _mean(tf.nn.relu(1.0 + generated_outputs))


def hinge_generator_loss(generated_outputs):
    """L_G = -E[D(G(z))]."""
    return -_mean(generated_outputs)


# === R1 [6] ===
def r1_penalty(discriminator, real_data, condition=None):
    """The zero-centred gradient penalty on real data [6] (multiply by gamma / 2):

        R1 = E[||grad_x D(x)||_2^2]
    """
    real_data = tf.convert_to_tensor(real_data, tf.float32)
    _, gradients = _per_row_gradients(discriminator, real_data, condition)
    return _mean(tf.reduce_sum(tf.square(gradients), axis=tf.range(1, tf.rank(gradients))))


#: loss name -> (generator loss, discriminator loss).
LOSSES = {
    "minimax": (minimax_generator_loss, minimax_discriminator_loss),
    "non_saturating": (modified_generator_loss, modified_discriminator_loss),
    "wasserstein": (wasserstein_generator_loss, wasserstein_discriminator_loss),
    "least_squares": (least_squares_generator_loss, least_squares_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
}


def loss_pair(name):
    """(generator loss, discriminator loss) of a name in `LOSSES`."""
    if name not in LOSSES:
        raise UserError(f"unknown GAN loss {name!r}; valid: {sorted(LOSSES)}")
    return LOSSES[name]
