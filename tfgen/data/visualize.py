"""Pictures of samples: image grids (pillow) and 2-D scatter plots (matplotlib, Agg).

Example:

    save_samples_figure(model.sample(tf.range(64, dtype=tf.int64)), model.data_spec,
                        "samples.png")
"""

import math
import pathlib

import numpy as np

from tfgen.files import atomic_path
from tfgen.errors import UserError


def _to_uint8(images, spec):
    """Scales raw values to 0..255: by `levels` for discrete data, else by `low`/`high`.

    Continuous data without `low`/`high` in the spec is scaled by the batch's own range.
    """
    images = np.asarray(images, np.float64)
    if spec.is_discrete:
        low, high = 0.0, float(spec.levels - 1)
    else:
        low = float(np.min(images)) if spec.low is None else spec.low
        high = float(np.max(images)) if spec.high is None else spec.high
    scaled = (images - low) / max(high - low, 1e-12) * 255.0
    return np.clip(np.round(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)


def image_grid(samples, spec, num_columns=None, padding=1):
    """Tiles a batch of images into one uint8 picture `[H, W, C]`.

    Args:
      samples: `[B, height, width, channels]` raw samples (as `log_prob` accepts them).
      spec: their `DataSpec` (kind "image").
      num_columns: images per row; default ceil(sqrt(B)).
      padding: white pixels between images.
    """
    samples = np.asarray(samples)
    if samples.ndim != 4 or tuple(samples.shape[1:]) != spec.event_shape:
        raise UserError(f"image_grid: samples have shape {samples.shape}, expected [B, *{spec.event_shape}]")
    count, height, width, channels = samples.shape
    if count == 0:
        raise UserError("image_grid: no samples")
    columns = num_columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels), 255, np.uint8
    )
    for i, image in enumerate(_to_uint8(samples, spec)):
        top = padding + (i // columns) * (height + padding)
        left = padding + (i % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def _atomic_save(path, save):
    """Calls `save(tmp_path)`, then renames into place; returns `path` as a `pathlib.Path`."""
    with atomic_path(path) as tmp:
        save(tmp)
    return pathlib.Path(path)


def save_image_grid(samples, spec, path, num_columns=None, min_size=256):
    """Writes `image_grid(samples, spec)` as a PNG, enlarged (nearest neighbour) so its
    longer side is at least `min_size` pixels. Returns the path.
    """
    from PIL import Image

    grid = image_grid(samples, spec, num_columns)
    scale = max(1, math.ceil(min_size / max(grid.shape[:2])))
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    return _atomic_save(path, lambda tmp: image.save(tmp, format="PNG"))


def save_scatter(samples, path, reference=None, limits=None, title=None, density=None):
    """Writes a PNG scatter plot of 2-D samples, over optional reference data in grey or
    a model's density.

    Args:
      samples: `[N, 2]`.
      path: output PNG.
      reference: optional `[M, 2]`, e.g. held-out data.
      limits: optional (low, high) for both axes.
      title: optional plot title.
      density: optional `[n, n]` density on a grid of cell centres spanning `limits`
        (first axis x), drawn as the background.
    """
    from matplotlib.figure import Figure  # Figure without pyplot renders with Agg

    points = {"samples": samples, "reference": reference}
    for name, value in points.items():
        if value is not None and (np.ndim(value) != 2 or np.shape(value)[1] != 2):
            raise UserError(f"save_scatter: {name} must be [N, 2], got shape {np.shape(value)}")
    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.add_subplot()
    if density is not None:
        if limits is None or np.ndim(density) != 2:
            raise UserError(f"save_scatter: density must be [n, n] with limits, got shape {np.shape(density)}")
        axes.imshow(np.asarray(density).T, origin="lower", extent=(*limits, *limits), cmap="magma",
                    interpolation="nearest")
    if reference is not None:
        reference = np.asarray(reference)
        axes.scatter(reference[:, 0], reference[:, 1], s=2, c="0.7", alpha=0.5, label="data", linewidths=0)
    samples = np.asarray(samples)
    axes.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:cyan" if density is not None else "tab:blue",
                 alpha=0.6, label="samples", linewidths=0)
    if limits is not None:
        axes.set_xlim(*limits)
        axes.set_ylim(*limits)
    axes.set_aspect("equal")
    if reference is not None:
        axes.legend(loc="upper right", markerscale=4)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _atomic_save(path, lambda tmp: figure.savefig(tmp, format="png"))


def save_samples_figure(samples, spec, path, reference=None):
    """The natural picture of samples: an image grid for images, a scatter for 2-D vectors.

    Args:
      samples: raw samples `[B, *spec.event_shape]`.
      spec: their `DataSpec`.
      path: output PNG.
      reference: optional data drawn under 2-D samples.
    """
    if spec.kind == "image" and len(spec.event_shape) == 3:
        return save_image_grid(samples, spec, path)
    if spec.kind == "vector" and spec.event_shape == (2,):
        limits = None if spec.low is None or spec.high is None else (spec.low, spec.high)
        return save_scatter(samples, path, reference=reference, limits=limits)
    raise UserError(
        f"save_samples_figure: no picture for kind {spec.kind!r} with event_shape {spec.event_shape}; "
        f"supported: kind 'image' [H, W, C] and kind 'vector' (2,)"
    )


def save_spectrograms(waveforms, sample_rate, path, columns=2):
    """Writes a PNG of spectrograms (dB), one panel per `{title: waveform in [-1, 1]}`.

    Args:
      waveforms: ordered `{title: 1-D waveform}`, e.g. real and generated audio.
      sample_rate: samples per second (the frequency axis goes to half of it).
      path: output PNG.
      columns: panels per row.
    """
    from matplotlib.figure import Figure

    if not waveforms:
        raise UserError("save_spectrograms: no waveforms")
    rows = math.ceil(len(waveforms) / columns)
    figure = Figure(figsize=(4.5 * columns, 2.6 * rows), dpi=100)
    for i, (title, waveform) in enumerate(waveforms.items()):
        axes = figure.add_subplot(rows, columns, i + 1)
        waveform = np.asarray(waveform, np.float64).reshape(-1)
        axes.specgram(waveform, NFFT=256, Fs=sample_rate, noverlap=192, cmap="magma", vmin=-120, vmax=-20)
        axes.set_title(title, fontsize=9)
        axes.set_xlabel("seconds", fontsize=8)
        axes.set_ylabel("Hz", fontsize=8)
        axes.tick_params(labelsize=7)
    figure.tight_layout()
    return _atomic_save(path, lambda tmp: figure.savefig(tmp, format="png"))
