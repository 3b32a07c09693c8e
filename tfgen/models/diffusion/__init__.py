"""Diffusion models: noise schedules, denoising networks and the DDPM (DDIM sampling)."""

from tfgen.models.diffusion import networks  # noqa: F401
