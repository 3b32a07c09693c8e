"""Generates the small speech corpus of `tfgen/data/speech/` with espeak-ng.

    .venv/bin/python tools/make_speech_corpus.py [--espeak PATH] [--espeak-data DIR] [--out DIR]

Several espeak-ng voices (the classes a WaveNet is conditioned on) read the same
Harvard sentences (IEEE 1969, public domain); each recording is resampled to 8 kHz
mono 16-bit PCM and written as `<out>/<voice>/<sentence number>.wav`. The `speech`
dataset (tfgen.data.audio) splits by sentence, so a test sentence is never heard in
training in any voice. Output is deterministic for one espeak-ng version.

This script installs nothing. espeak-ng is a Debian/Ubuntu package:

    sudo apt-get install espeak-ng

or, without root, unpacked into a local prefix:

    mkdir debs && cd debs && apt-get download espeak-ng espeak-ng-data libespeak-ng1 \
        libpcaudio0 libsonic0 libpulse0 libsndfile1 libasyncns0 libflac12 libvorbis0a \
        libvorbisenc2 libopus0 libogg0 libmpg123-0 libmp3lame0 && cd ..
    for d in debs/*.deb; do dpkg-deb -x $d prefix; done
    LD_LIBRARY_PATH=prefix/usr/lib/x86_64-linux-gnu:prefix/usr/lib/x86_64-linux-gnu/pulseaudio \
        .venv/bin/python tools/make_speech_corpus.py --espeak prefix/usr/bin/espeak-ng \
        --espeak-data prefix/usr/lib/x86_64-linux-gnu/espeak-ng-data

(`ldd prefix/usr/bin/espeak-ng` lists any library still missing.)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfgen.data.audio import SPEECH_CORPUS, read_wav  # noqa: E402
from tfgen.files import atomic_directory  # noqa: E402

SAMPLE_RATE = 8000
#: espeak-ng voice variants: two male, two female.
VOICES = {"adam": "en-us+adam", "andrea": "en-us+Andrea", "edward": "en-us+edward", "annie": "en-us+Annie"}
#: Harvard sentences, list 1.
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
)
APT_HINT = ("espeak-ng not found: install it with `sudo apt-get install espeak-ng`, or without root "
            "see this script's docstring (apt-get download + dpkg-deb -x into a local prefix)")


def speak(espeak, data_dir, voice, text, path):
    command = [espeak, "-v", voice, "-s", "150", "-w", path, text]
    if data_dir:
        command.insert(1, f"--path={data_dir}")
    subprocess.run(command, check=True, capture_output=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--espeak", default=shutil.which("espeak-ng"), help="the espeak-ng binary")
    parser.add_argument("--espeak-data", help="espeak-ng-data folder of a local (unpacked) install")
    parser.add_argument("--out", default=SPEECH_CORPUS,
                        help="the corpus folder, written whole or not at all; must not exist")
    args = parser.parse_args(argv)
    if not args.espeak or not os.path.exists(args.espeak):
        raise SystemExit(APT_HINT)
    from scipy.io import wavfile

    if os.path.exists(args.out):
        raise SystemExit(f"{args.out} exists: remove it first, or write elsewhere with --out")
    total = 0
    with atomic_directory(args.out) as out, tempfile.TemporaryDirectory() as tmp:
        for name, voice in VOICES.items():
            os.makedirs(os.path.join(out, name))
            for number, sentence in enumerate(SENTENCES, start=1):
                raw = os.path.join(tmp, "raw.wav")
                speak(args.espeak, args.espeak_data, voice, sentence, raw)
                waveform = read_wav(raw, SAMPLE_RATE)
                pcm = np.round(waveform * 32767).astype("<i2")
                wavfile.write(os.path.join(out, name, f"{number:02d}.wav"), SAMPLE_RATE, pcm)
                total += len(pcm)
    print(f"wrote {len(VOICES)} voices x {len(SENTENCES)} sentences, {total / SAMPLE_RATE:.1f} s of "
          f"{SAMPLE_RATE} Hz audio, to {args.out}")


if __name__ == "__main__":
    main()
