"""Audio data: mu-law, WAV reading (resampling, channels), the WAV-folder loader, the
shipped speech corpus and the synthetic tones."""

import numpy as np
import pytest
from scipy.io import wavfile

from tfgen.data import load_dataset
from tfgen.data.audio import mu_law_decode, mu_law_encode, read_wav
from tfgen.errors import UserError


def tone(frequency, seconds, rate, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def write(path, waveform, rate, dtype="<i2"):
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(str(path), rate, np.round(np.asarray(waveform) * 32767).astype(dtype))
    return path


def test_mu_law_round_trip_and_levels():
    x = np.linspace(-1, 1, 1001)
    codes = mu_law_encode(x)
    assert codes.min() == 0 and codes.max() == 255 and mu_law_encode(0.0) == 128
    assert np.all(np.diff(codes) >= 0)
    # Quantization is fine near silence and coarse near full scale.
    error = np.abs(mu_law_decode(codes) - x)
    assert error[np.abs(x) < 0.01].max() < 2e-4 and error.max() < 0.025
    np.testing.assert_array_equal(mu_law_encode(mu_law_decode(np.arange(256))), np.arange(256))
    assert mu_law_encode(3.0) == 255  # clipped


def test_a_wav_at_another_rate_is_resampled(tmp_path):
    path = write(tmp_path / "a.wav", tone(440, 1.0, 16000), 16000)
    waveform = read_wav(str(path), 8000)
    assert len(waveform) == 8000
    spectrum = np.abs(np.fft.rfft(waveform))
    assert abs(np.argmax(spectrum) * 8000 / len(waveform) - 440) < 2


def test_several_channels_are_rejected_naming_the_file_unless_mixed(tmp_path):
    stereo = np.stack([tone(440, 0.1, 8000), tone(440, 0.1, 8000)], axis=1)
    path = write(tmp_path / "stereo.wav", stereo, 8000)
    with pytest.raises(UserError, match=r"stereo\.wav: 2 channels.*mix_to_mono"):
        read_wav(str(path), 8000)
    np.testing.assert_allclose(read_wav(str(path), 8000, mix_to_mono=True), stereo[:, 0], atol=1e-4)


def test_an_unreadable_wav_is_an_error_naming_it(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF not really a wav")
    with pytest.raises(UserError, match="broken.wav"):
        read_wav(str(path), 8000)


def test_eight_bit_wav_is_centred(tmp_path):
    path = tmp_path / "u8.wav"
    wavfile.write(str(path), 8000, np.full(100, 128, np.uint8))
    np.testing.assert_array_equal(read_wav(str(path), 8000), np.zeros(100))


def test_wav_folder_classes_segments_and_groups(tmp_path):
    for voice, frequency in (("high", 880), ("low", 220)):
        for name in ("one", "two", "three", "four", "five"):
            write(tmp_path / voice / f"{name}.wav", tone(frequency, 0.35, 16000), 16000)
    config = {"name": "wav_folder", "path": str(tmp_path), "segment_length": 1000, "sample_rate": 8000,
              "conditional": True, "group_by": "name", "validation_fraction": 0.2, "test_fraction": 0.2}
    dataset = load_dataset(config)
    spec = dataset.spec
    assert spec.kind == "audio" and spec.event_shape == (1000, 1) and spec.levels == 256
    assert spec.sample_rate == 8000 and spec.num_classes == 2 and dataset.class_names == ("high", "low")
    # 0.35 s at 8 kHz = 2800 samples: 2 segments per file, 20 in all; one name per split
    # for test and validation, in both voices.
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    assert sizes == {"train": 12, "validation": 4, "test": 4}
    assert sorted(np.bincount(dataset.splits["test"].y)) == [2, 2]


def test_wav_folder_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        load_dataset({"name": "wav_folder", "path": str(tmp_path / "missing")})
    with pytest.raises(UserError, match="no .wav files"):
        load_dataset({"name": "wav_folder", "path": str(tmp_path)})
    write(tmp_path / "short.wav", tone(440, 0.01, 8000), 8000)
    with pytest.raises(UserError, match="shorter than segment_length"):
        load_dataset({"name": "wav_folder", "path": str(tmp_path)})
    with pytest.raises(UserError, match="group_by"):
        load_dataset({"name": "wav_folder", "path": str(tmp_path), "group_by": "voice"})


def test_the_shipped_speech_corpus():
    dataset = load_dataset({"name": "speech", "conditional": True})
    assert dataset.spec.num_classes == 4 and dataset.spec.sample_rate == 8000
    assert all(np.bincount(split.y).min() > 0 for split in dataset.splits.values())
    x = dataset.splits["train"].x
    assert x.min() >= 0 and x.max() <= 255 and len(np.unique(x)) > 100  # speech, not silence


def test_tones_are_one_frequency_per_class():
    dataset = load_dataset({"name": "tones", "conditional": True, "num_classes": 3})
    split = dataset.splits["train"]
    for label in range(3):
        waveform = mu_law_decode(split.x[split.y == label][0, :, 0])
        peak = np.argmax(np.abs(np.fft.rfft(waveform))) * 8000 / len(waveform)
        assert abs(peak - 220 * 1.5 ** label) < 8000 / len(waveform)
