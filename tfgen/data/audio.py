"""Audio data: mu-law companding, WAV files, and the audio datasets.

Audio with `levels` is mu-law coded (ITU-T G.711's curve with mu = levels - 1): a
waveform in [-1, 1] maps to the integer levels `0 .. levels-1`, finer near silence, as
WaveNet models it (van den Oord et al. 2016, arXiv:1609.03499). Every tfgen reader and
writer of audio levels (the datasets below, `tfgen sample`'s WAV writer) uses
`mu_law_encode` / `mu_law_decode`.

Datasets (options and defaults), each an audio `DataSpec` of event shape
`[segment_length, 1]`, `levels` mu-law levels and `sample_rate`:

- `wav_folder`: WAV files (PCM or float, any sample rate: resampled to `sample_rate`)
  either all at the top level (no labels) or one subfolder per class (labels are the
  sorted subfolder names' positions). Each file is cut into non-overlapping segments of
  `segment_length` samples (the tail shorter than a segment is dropped). Segments of one
  file stay in one split; with `group_by: name`, files with the same name in different
  class folders (the same sentence in several voices) stay in one split too. A file with
  more than one channel is an error naming it unless `mix_to_mono: true`.
  Options: path (required), sample_rate=8000, segment_length=4000, levels=256,
  conditional=False, mix_to_mono=False, group_by="file", seed=0,
  validation_fraction=0.1, test_fraction=0.1.
- `speech`: the small speech corpus shipped in `tfgen/data/speech/` (espeak-ng voices
  reading the same sentences; `tools/make_speech_corpus.py` regenerates it), a
  `wav_folder` grouped by sentence with the voices as classes. Options as
  `wav_folder` without `path` and `group_by`; test_fraction=0.2.
- `tones`: synthetic tones for tests, one frequency per class (220 Hz * 1.5^class) with
  a random phase and amplitude per example. Options: num_classes=3, num_examples=60,
  sample_rate=8000, segment_length=400, levels=256, conditional=False, seed=0,
  validation_fraction=0.1, test_fraction=0.1.
"""

import math
import os
import pathlib

import numpy as np

from tfgen.data.datasets import REQUIRED, make_dataset, register_dataset
from tfgen.errors import MissingPath, UserError

SPEECH_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "speech")
WAV_SUFFIXES = (".wav",)


def mu_law_encode(waveform, levels=256):
    """Waveform in [-1, 1] (clipped) -> integer mu-law levels `0 .. levels-1` (int32)."""
    mu = levels - 1
    x = np.clip(np.asarray(waveform, np.float64), -1.0, 1.0)
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    return np.round((companded + 1.0) / 2.0 * mu).astype(np.int32)


def mu_law_decode(codes, levels=256):
    """Mu-law levels -> waveform in [-1, 1] (float64); the inverse of `mu_law_encode` up
    to its quantization."""
    mu = levels - 1
    companded = 2.0 * np.asarray(codes, np.float64) / mu - 1.0
    return np.sign(companded) * np.expm1(np.abs(companded) * math.log1p(mu)) / mu


def read_wav(path, sample_rate, mix_to_mono=False):
    """A WAV file as a float64 mono waveform in [-1, 1] at `sample_rate` Hz.

    Integer PCM is scaled by its full range, float WAVs are taken as they are; another
    rate is resampled (polyphase, `scipy.signal.resample_poly`).

    Raises:
      UserError: unreadable file, or several channels without `mix_to_mono` (naming the
        file and what was wrong).
    """
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable WAV file ({e})") from None
    if data.ndim == 2 and data.shape[1] > 1:
        if not mix_to_mono:
            raise UserError(f"{path}: {data.shape[1]} channels; tfgen models mono audio "
                            "(set mix_to_mono: true to average the channels)")
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        # 8-bit WAV is unsigned with silence at 128; wider PCM is signed.
        data = (data.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    else:
        data = data.astype(np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.size == 0:
        raise UserError(f"{path}: no audio samples")
    if not np.all(np.isfinite(data)):
        raise UserError(f"{path}: NaN/Inf audio samples")
    if rate != sample_rate:
        divisor = math.gcd(int(rate), int(sample_rate))
        data = resample_poly(data, sample_rate // divisor, rate // divisor)
    return np.clip(data, -1.0, 1.0)


def segments(waveform, segment_length):
    """`[N, segment_length]` non-overlapping segments (the short tail dropped)."""
    count = len(waveform) // segment_length
    return np.reshape(waveform[:count * segment_length], [count, segment_length])


def _check_audio_options(source, sample_rate, segment_length, levels):
    if sample_rate < 1 or segment_length < 2:
        raise UserError(f"{source}: sample_rate must be >= 1 and segment_length >= 2, got "
                        f"{sample_rate}, {segment_length}")
    if not 2 <= levels <= 65536:
        raise UserError(f"{source}: levels must be in [2, 65536], got {levels}")


def _audio_dataset(codes, y, groups, *, source, sample_rate, levels, seed, validation_fraction,
                   test_fraction, conditional, class_names=None):
    return make_dataset(
        codes[..., None].astype(np.float32), y, {"kind": "audio", "levels": levels, "sample_rate": sample_rate},
        source=source, seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction,
        groups=groups, conditional=conditional, class_names=class_names,
    )


_AUDIO = {"sample_rate": ("int", 8000), "segment_length": ("int", 4000), "levels": ("int", 256),
          "conditional": ("bool", False), "mix_to_mono": ("bool", False)}


@register_dataset("wav_folder", path=("path", REQUIRED), group_by=("str", "file"), **_AUDIO)
def _wav_folder(path, group_by="file", **options):
    folder = pathlib.Path(os.fspath(path)).expanduser()
    if not folder.is_dir():
        raise MissingPath(f"{folder}: no such folder")
    if group_by not in ("file", "name"):
        raise UserError(f"wav_folder: group_by must be 'file' or 'name', got {group_by!r}")

    def wavs_in(directory):
        return sorted(f for f in directory.iterdir() if f.is_file() and f.suffix.lower() in WAV_SUFFIXES)

    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and wavs_in(d))
    if class_dirs:
        files = [(f, label) for label, d in enumerate(class_dirs) for f in wavs_in(d)]
        class_names = [d.name for d in class_dirs]
    else:
        files = [(f, 0) for f in wavs_in(folder)]
        class_names = None
    if not files:
        raise UserError(f"{folder}: no .wav files (at the top level or in class subfolders)")
    return _segmented(files, class_names, group_by, source=str(folder), **options)


def _segmented(files, class_names, group_by, *, source, sample_rate, segment_length, levels, conditional,
               mix_to_mono, seed, validation_fraction, test_fraction):
    _check_audio_options(source, sample_rate, segment_length, levels)
    names = sorted({f.name for f, _ in files})
    codes, labels, groups = [], [], []
    for index, (path, label) in enumerate(files):
        pieces = segments(read_wav(str(path), sample_rate, mix_to_mono), segment_length)
        codes.append(mu_law_encode(pieces, levels))
        labels.append(np.full(len(pieces), label, np.int32))
        groups.append(np.full(len(pieces), names.index(path.name) if group_by == "name" else index))
    codes = np.concatenate(codes)
    if len(codes) == 0:
        raise UserError(f"{source}: every file is shorter than segment_length={segment_length} samples")
    return _audio_dataset(codes, np.concatenate(labels) if class_names else None, np.concatenate(groups),
                          source=source, sample_rate=sample_rate, levels=levels, seed=seed,
                          validation_fraction=validation_fraction, test_fraction=test_fraction,
                          conditional=conditional, class_names=class_names)


@register_dataset("speech", test_fraction=("float", 0.2), **_AUDIO)
def _speech(**options):
    return _wav_folder(SPEECH_CORPUS, group_by="name", **options)


@register_dataset("tones", num_classes=("int", 3), num_examples=("int", 60), sample_rate=("int", 8000),
                  segment_length=("int", 400), levels=("int", 256), conditional=("bool", False))
def _tones(num_classes, num_examples, sample_rate, segment_length, levels, conditional, seed,
           validation_fraction, test_fraction):
    _check_audio_options("tones", sample_rate, segment_length, levels)
    if num_classes < 1 or num_examples < num_classes:
        raise UserError(f"tones: need num_classes >= 1 and num_examples >= num_classes, got "
                        f"{num_classes}, {num_examples}")
    rng = np.random.default_rng(seed)
    y = np.arange(num_examples) % num_classes
    frequency = 220.0 * 1.5 ** y
    phase = rng.uniform(0, 2 * math.pi, num_examples)
    amplitude = rng.uniform(0.3, 0.9, num_examples)
    t = np.arange(segment_length) / sample_rate
    waveform = amplitude[:, None] * np.sin(2 * math.pi * frequency[:, None] * t[None] + phase[:, None])
    return _audio_dataset(mu_law_encode(waveform, levels), y.astype(np.int32), None, source="tones",
                          sample_rate=sample_rate, levels=levels, seed=seed,
                          validation_fraction=validation_fraction, test_fraction=test_fraction,
                          conditional=conditional)
