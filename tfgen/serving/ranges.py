"""The value ranges of a tfgen export's inputs, checked before its graph runs.

Out of range, a model answers with what its graph happens to do: a `condition` of -1 or
10 on a 10-class model fails inside a gather with TensorFlow graph text that differs per
call, and a finite but huge `x` (3e38) overflows float32 and returns NaN with OK. A
tfgen export records what its inputs mean in `assets.extra/tfgen.json`
(`tfgen.contract.Capabilities`), so the server refuses such values with
INVALID_ARGUMENT naming the input and its range:

- `condition`: a class id, 0 .. num_classes - 1;
- `x` of discrete data: a level, 0 .. levels - 1;
- `x` of continuous data and `z`: |value| <= CONTINUOUS_LIMIT, past which the squares
  every density here takes overflow float32 (the shipped flows answer finite log_probs
  up to 1e19 and NaN at 3e38).

Any other SavedModel has no such file and no such checks, as under TF Serving.
"""

import json
import os

from tfgen.contract import Capabilities

METADATA = os.path.join("assets.extra", "tfgen.json")
CONTINUOUS_LIMIT = 1e18


def input_ranges(path):
    """`{alias: (low, high, what the range is)}` for the export at `path`; {} if it is
    not a tfgen export."""
    try:
        with open(os.path.join(path, METADATA)) as f:
            capabilities = Capabilities.from_metadata(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    continuous = (-CONTINUOUS_LIMIT, CONTINUOUS_LIMIT, "beyond it float32 arithmetic overflows")
    ranges = {"x": continuous, "z": continuous}
    if capabilities.levels:
        ranges["x"] = (0, capabilities.levels - 1,
                       f"the data's {capabilities.levels} quantization levels")
    if capabilities.num_classes:
        ranges["condition"] = (0, capabilities.num_classes - 1,
                               f"the model's {capabilities.num_classes} classes")
    return ranges
