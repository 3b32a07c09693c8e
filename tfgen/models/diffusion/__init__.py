"""Diffusion models: noise schedules, denoising networks and the DDPM (DDIM sampling)."""

from tfgen.models.diffusion import networks, schedules  # noqa: F401
from tfgen.models.diffusion.ddpm import DDPM  # noqa: F401
