"""Generative adversarial networks: DCGAN and MLP networks, conditional GANs with a
projection discriminator, every loss of `tfgen.losses`."""

from tfgen.models.gan.model import GAN

__all__ = ["GAN"]
