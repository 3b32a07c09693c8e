"""What a fine-tuned version records about where it came from, and whether it is good
enough to publish (docs/architecture.md, "Retraining and publishing").

A fine-tuned export's tfgen.json carries

    "lineage": {
      "parent": {"base_path": ..., "version": 3, "created": ..., "data_fingerprint": ...},
      "data_fingerprint": "sha256:...",   # the data this version was fine-tuned on
      "held_out": {"split": "test", "figure": "bits_per_dim",
                   "parent": {...}, "new": {...}},   # both measured on that split
      "frozen": ["decoder"], "forced": false
    }

NumPy and the standard library only.
"""

import dataclasses
import hashlib
import math

import numpy as np

#: Held-out figures that describe the evaluation rather than the model.
_BOOKKEEPING = ("num_examples", "num_noise_samples")


def data_fingerprint(dataset):
    """`sha256:<hex>` of every split's examples and labels (dtype, shape and bytes), in
    split order: the same data gives the same fingerprint in any process."""
    digest = hashlib.sha256()
    for name in sorted(dataset.splits):
        split = dataset.splits[name]
        digest.update(name.encode())
        for array in (split.x, split.y):
            if array is None:
                digest.update(b"none")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    return "sha256:" + digest.hexdigest()


def compared_figure(parent_figures, new_figures, reported_losses):
    """The figure the publish gate compares (lower is better): `bits_per_dim` when both
    have it, else the first of the model's reported losses both have, else None."""
    for name in ("bits_per_dim", *reported_losses):
        if name in parent_figures and name in new_figures:
            return name
    return None


@dataclasses.dataclass
class Comparison:
    """The fine-tuned version against its parent on the same held-out split.

    Attributes:
      figure: the compared figure's name (None: nothing to compare).
      parent, new: its two values.
      max_regression: how much worse the new one may be.
    """

    figure: str
    parent: float
    new: float
    max_regression: float

    @property
    def worse_by(self):
        return self.new - self.parent

    @property
    def acceptable(self):
        """Finite and not worse than the parent by more than `max_regression`."""
        if self.figure is None:
            return False
        return math.isfinite(self.new) and self.worse_by <= self.max_regression

    def line(self):
        if self.figure is None:
            return "no held-out figure to compare with the parent's"
        verdict = "within" if self.acceptable else "beyond"
        return (f"{self.figure} {self.new:.4f} vs the parent's {self.parent:.4f} "
                f"({self.worse_by:+.4f}; {verdict} the allowed regression {self.max_regression:g})")


def compare(parent_figures, new_figures, reported_losses, max_regression):
    """A `Comparison` of the new figures with the parent's."""
    figure = compared_figure(parent_figures, new_figures, reported_losses)
    if figure is None:
        return Comparison(None, math.nan, math.nan, max_regression)
    return Comparison(figure, float(parent_figures[figure]), float(new_figures[figure]), max_regression)


def side_by_side(split, parent_label, parent_figures, new_figures):
    """A table of the held-out figures of parent and new version on one split."""
    names = [n for n in sorted(set(parent_figures) | set(new_figures)) if n not in _BOOKKEEPING]

    def cell(figures, name):
        value = figures.get(name)
        return f"{value:.4f}" if isinstance(value, (int, float)) else "-"

    rows = [(f"held-out ({split})", parent_label, "fine-tuned", "change")]
    for name in names:
        parent, new = parent_figures.get(name), new_figures.get(name)
        change = f"{new - parent:+.4f}" if isinstance(parent, (int, float)) and isinstance(new, (int, float)) else "-"
        rows.append((name, cell(parent_figures, name), cell(new_figures, name), change))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)
