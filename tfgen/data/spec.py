"""What a model's data looks like: the contract between datasets, models and exports."""

import dataclasses
import math
from typing import Optional, Tuple
from tfgen.errors import UserError

KINDS = ("vector", "image", "audio")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Shape, type and range of one example, as the user holds it.

    Args:
      event_shape: shape of one example, e.g. `(8, 8, 1)` or `(2,)`.
      kind: "vector", "image" or "audio"; chooses networks and how samples are shown.
      levels: number of quantization levels for discrete data (values are the integers
        `0 .. levels-1`, stored as float32); `None` for continuous data.
      low, high: value range of continuous data (for plots and input checks);
        ignored when `levels` is set.
      num_classes: number of classes of the optional condition; `None` if unconditional.
      dtype: dtype of examples as fed to `log_prob` (always float32 today).
      sample_rate: samples per second of audio (for WAV files); `None` otherwise.
    """

    event_shape: Tuple[int, ...]
    kind: str = "vector"
    levels: Optional[int] = None
    low: Optional[float] = None
    high: Optional[float] = None
    num_classes: Optional[int] = None
    dtype: str = "float32"
    sample_rate: Optional[int] = None

    def __post_init__(self):
        object.__setattr__(self, "event_shape", tuple(int(d) for d in self.event_shape))
        if not self.event_shape or any(d <= 0 for d in self.event_shape):
            raise UserError(f"event_shape must be non-empty positive dims, got {self.event_shape}")
        if self.kind not in KINDS:
            raise UserError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.levels is not None and int(self.levels) < 2:
            raise UserError(f"levels must be >= 2 or None, got {self.levels}")
        if self.num_classes is not None and int(self.num_classes) < 1:
            raise UserError(f"num_classes must be >= 1 or None, got {self.num_classes}")
        if self.sample_rate is not None and (self.kind != "audio" or int(self.sample_rate) < 1):
            raise UserError(f"sample_rate must be a positive integer of audio data, got {self.sample_rate} "
                             f"for kind {self.kind!r}")

    @property
    def num_dims(self) -> int:
        return math.prod(self.event_shape)

    @property
    def is_discrete(self) -> bool:
        return self.levels is not None

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["event_shape"] = list(self.event_shape)
        return d

    @classmethod
    def from_dict(cls, d) -> "DataSpec":
        if isinstance(d, DataSpec):
            return d
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UserError(f"unknown data spec key(s): {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_description(cls, description) -> "DataSpec":
        """The spec a model's `describe` signature gives (`tfgen.contract.read_description`;
        0 there means none). It records no value range."""
        return cls(description["event_shape"], kind=description["kind"],
                   levels=description["levels"] or None, num_classes=description["num_classes"] or None,
                   sample_rate=description["sample_rate"] or None)
