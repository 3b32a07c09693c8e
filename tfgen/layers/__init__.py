"""Network blocks shared by more than one family (docs/architecture.md, "Layout").

- `masked.MaskedConv2D`: PixelCNN's masked 2-D convolutions (type A and B, full,
  vertical and horizontal stacks, channel groups for colour).
- `causal.CausalConv1D`: causal, dilated 1-D convolutions (WaveNet), with a one-step
  form for cached generation.
- `gated.gated_activation`, `gated.ResidualSkip`: gated activation units and the
  residual/skip projections after them.

Every layer here has the same two forms: a full pass over a whole image or sequence
(training, `log_prob`, naive sampling) and a small pass over just the inputs one new
output needs (cached sampling), computed from the same kernel, so both give the same
numbers up to float rounding.
"""

from tfgen.layers.causal import CausalConv1D
from tfgen.layers.gated import ResidualSkip, gated_activation
from tfgen.layers.masked import MaskedConv2D

__all__ = ["CausalConv1D", "MaskedConv2D", "ResidualSkip", "gated_activation"]
