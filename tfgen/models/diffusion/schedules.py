"""Noise schedules of a DDPM: beta_t for t = 1 .. T, as float64 numpy arrays.

- `linear` (Ho et al. 2020, arXiv:2006.11239): beta_t evenly spaced from 1e-4 to 0.02 at
  T = 1000, both ends scaled by 1000 / T so that other T cover the same noise range
  (Nichol & Dhariwal 2021's convention).
- `cosine` (Nichol & Dhariwal 2021, arXiv:2102.09672): alpha_bar(t) =
  cos^2(((t / T + s) / (1 + s)) pi / 2) / alpha_bar(0), s = 0.008, and
  beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1), clipped at 0.999 near t = T.
"""

import numpy as np

from tfgen.errors import UserError


def linear(timesteps, beta_start=1e-4, beta_end=0.02):
    scale = 1000.0 / timesteps
    return np.linspace(beta_start * scale, min(beta_end * scale, 0.999), timesteps, dtype=np.float64)


def cosine(timesteps, offset=0.008, max_beta=0.999):
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    alpha_bar = np.cos((steps + offset) / (1.0 + offset) * np.pi / 2.0) ** 2
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)


SCHEDULES = {"linear": linear, "cosine": cosine}


def betas(name, timesteps):
    """beta_1 .. beta_T of the schedule `name` (a key of SCHEDULES)."""
    if name not in SCHEDULES:
        raise UserError(f"unknown noise schedule {name!r}; valid: {sorted(SCHEDULES)}")
    if isinstance(timesteps, bool) or int(timesteps) != timesteps or timesteps < 2:
        raise UserError(f"timesteps must be an integer >= 2, got {timesteps!r}")
    return SCHEDULES[name](int(timesteps))
