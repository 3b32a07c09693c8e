"""Latent-space tools over exported signatures: interpolation, attribute vectors,
reconstructions, for every model whose export has `encode`/`decode` (flows, VAEs) and
seed interpolation for decode-only ones; locally or against a server.

    from tfgen.latent import LatentSpace, LocalCaller, ServerCaller
    space = LatentSpace(LocalCaller("saved_models/digits_realnvp"))

See `tfgen.latent.space` (the tools), `tfgen.latent.callers` (where the signatures run)
and `tfgen.latent.cli` (`tfgen interpolate`, `tfgen attribute`, `tfgen reconstruct`).
Like serving and scoring, this package works on SavedModels and imports no model code.
"""

from tfgen.latent.callers import LocalCaller, ServerCaller
from tfgen.latent.space import LatentSpace, interpolate, prior_codes

__all__ = ["LatentSpace", "LocalCaller", "ServerCaller", "interpolate", "prior_codes"]
