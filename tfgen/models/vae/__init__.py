"""Variational autoencoders on TFP distributions: likelihoods, priors, posterior flows."""

from tfgen.models.vae.model import VAE

__all__ = ["VAE"]
