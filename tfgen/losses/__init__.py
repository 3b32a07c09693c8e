"""Adversarial losses as pure functions of discriminator outputs (TF-GAN's
`losses_impl.py` style): `<name>_generator_loss` / `<name>_discriminator_loss`, plus the
gradient penalties that need the discriminator itself (`wasserstein_gradient_penalty`,
`r1_penalty`). `LOSSES` maps each loss name a GAN config may give to its pair."""

from tfgen.losses.adversarial import (
    LOSSES,
    hinge_discriminator_loss,
    hinge_generator_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    loss_pair,
    minimax_discriminator_loss,
    minimax_generator_loss,
    modified_discriminator_loss,
    modified_generator_loss,
    r1_penalty,
    safe_norm,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
    wasserstein_gradient_penalty,
)

__all__ = [
    "LOSSES",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "loss_pair",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "modified_discriminator_loss",
    "modified_generator_loss",
    "r1_penalty",
    "safe_norm",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
    "wasserstein_gradient_penalty",
]
