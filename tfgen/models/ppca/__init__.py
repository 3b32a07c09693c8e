"""Probabilistic PCA: the linear latent-variable baseline with an exact likelihood."""

from tfgen.models.ppca.model import PPCA, closed_form_fit

__all__ = ["PPCA", "closed_form_fit"]
