"""Pure-Python definitions shared by models, exports, the server's clients and scoring.

Nothing here imports TensorFlow: readers of SavedModels (the client, `tfgen score`, the
conformance checks) use these names without loading any model code. See
docs/architecture.md, "The model contract" and "The SavedModel contract".
"""

import enum


class LogProbKind(str, enum.Enum):
    """What a model's `log_prob` means, stored in every export's metadata.

    - `exact`: log p(x), the exact density (continuous data) or probability (discrete
      data) of x under the model (flows on continuous data, autoregressive models).
    - `dequantized_lower_bound`: a continuous density on discrete data, dequantized:
      a deterministic K-draw importance-weighted estimate whose expectation is a lower
      bound on log P(x) (flows on quantized data).
    - `importance_weighted_bound`: an importance-weighted evidence lower bound over
      K posterior samples (latent-variable models: VAEs; Burda et al. 2016).
    - `none`: the model has no tractable likelihood (GANs); no `log_prob` signature.
    """

    EXACT = "exact"
    DEQUANTIZED_LOWER_BOUND = "dequantized_lower_bound"
    IMPORTANCE_WEIGHTED_BOUND = "importance_weighted_bound"
    NONE = "none"

    def __str__(self):
        return self.value

    @property
    def has_log_prob(self):
        return self is not LogProbKind.NONE
