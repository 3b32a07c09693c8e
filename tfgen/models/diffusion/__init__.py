"""Diffusion models: noise schedules, denoising networks and the DDPM (DDIM sampling)."""

from tfgen.models.diffusion import networks, schedules
from tfgen.models.diffusion.ddpm import DDPM

__all__ = ["networks", "schedules", "DDPM"]
