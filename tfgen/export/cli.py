"""`tfgen sample` and `tfgen check`: argument parsing and printing only.

`tfgen sample --model saved_models/NAME[/VERSION] -n 16 --out grid.png` calls an
export's `sample` signature in this process (the newest version if none is named) and
writes an image grid, a 2-D scatter plot, a WAV, or (for `--out *.npy`) the raw array.
`tfgen sample --server HOST:PORT --model NAME -n 16 --out grid.png` calls the `sample`
signature of a model served by `tfgen serve` or `tensorflow_model_server` over gRPC
(tfgen.serving.Client). Locally the export's tfgen.json says what the data is; a TF
Serving client cannot read files, so with --server the model's `describe` signature
says it (data kind, event shape, levels, number of classes, sample rate). What is
written follows from that, never from the shape of the samples:

    kind image [H, W, C]  -> image grid PNG, scaled by the levels (0 .. L-1) if discrete
    kind vector [2]       -> 2-D scatter PNG
    kind audio            -> 16-bit PCM mono WAV at the model's sample rate
                             (--sample-rate for models that record none; default 16000)

Other vector shapes have no picture: use --out *.npy. Audio is written as one WAV, the
samples one after another with 0.1 s of silence between; values are mapped to -1 .. 1
by the levels if discrete, else taken as they are when within -1 .. 1 and divided by the
largest magnitude otherwise. A conditional model without --condition cycles through
its classes.

`tfgen check PATH` runs the SavedModel conformance checks and exits 1 if any fails.
"""

import os

import numpy as np

from tfgen.contract import SIGNATURES, Capabilities
from tfgen.errors import UserError, graph_error_message

DEFAULT_SAMPLE_RATE = 16000


def register(subparsers):
    sample = subparsers.add_parser(
        "sample", help="draw samples from an exported model and save a picture",
        description="Calls the `sample` signature of an export (or, with --server, of a served "
                    "model over gRPC) with seeds S .. S+n-1 and writes an image grid or 2-D "
                    "scatter PNG, a WAV for audio, or the raw array for --out *.npy. What the "
                    "data is comes from the export's tfgen.json, or with --server from the "
                    "model's describe signature: image -> grid, 2-D vector -> scatter, audio -> WAV.",
    )
    sample.add_argument("--model", required=True, metavar="saved_models/NAME[/VERSION] | NAME",
                        help="an export (without VERSION the newest version); with --server, "
                             "the served model's name")
    sample.add_argument("--server", metavar="HOST:PORT",
                        help="sample from a running TF Serving API server (gRPC) instead of "
                             "loading the export in this process")
    sample.add_argument("--version", type=int, metavar="N",
                        help="model version (default: the newest / the server's default)")
    sample.add_argument("--sample-rate", type=int, metavar="HZ",
                        help="WAV sample rate of an audio model that records none "
                             f"(default {DEFAULT_SAMPLE_RATE})")
    sample.add_argument("-n", "--num-samples", type=int, default=16, metavar="N", help="rows (default 16)")
    sample.add_argument("--out", required=True, metavar="PATH", help="output .png (.wav for audio; .npy for raw samples)")
    sample.add_argument("--temperature", type=float, default=1.0, metavar="T", help="latent scale (default 1.0)")
    sample.add_argument("--condition", type=int, metavar="C",
                        help="class id of a conditional model (default: cycle through the classes)")
    sample.add_argument("--seed", type=int, default=0, metavar="S", help="first seed (default 0)")
    sample.add_argument("--length", type=int, metavar="T",
                        help="audio models: samples per row (default: the model's training example length; "
                             "at most its max_length)")
    sample.add_argument("--steps", type=int, metavar="S",
                        help="diffusion models: denoising steps, 1 .. the model's timesteps T (default 50); "
                             "score models: Langevin steps per noise level (default the model's)")
    sample.add_argument("--step-size", type=float, metavar="EPS",
                        help="score models: Langevin step size (default the model's)")
    sample.add_argument("--eta", type=float, metavar="ETA",
                        help="diffusion models: DDIM eta in [0, 1] (default 0, deterministic; --steps T "
                             "--eta 1 is ancestral DDPM sampling)")
    sample.add_argument("--guidance-scale", type=float, metavar="W",
                        help="conditional diffusion models: classifier-free guidance scale (default 1.0; "
                             "0 unconditional)")
    sample.set_defaults(func=run_sample)

    check = subparsers.add_parser(
        "check", help="check that an export keeps the SavedModel contract",
        description="Loads the export with tf.saved_model.load (without tfgen), the TF1 Session "
                    "loader and saved_model_cli, and checks signature names, batching and ops.",
    )
    check.add_argument("path", metavar="PATH", help="saved_models/NAME[/VERSION] (default: newest version)")
    check.set_defaults(func=run_check)


def run_sample(args):
    if args.server:
        return _run_sample_server(args)
    from tfgen.data.spec import DataSpec
    from tfgen.export import reader

    _check_out(args.out)
    model = args.model if args.version is None else os.path.join(args.model, str(args.version))
    version_dir = reader.resolve_version(model)
    metadata = reader.read_metadata(version_dir)
    spec = DataSpec.from_dict(metadata["data_spec"])
    inputs = _sample_inputs(args, spec)
    takes = dict(Capabilities.from_metadata(metadata).sample_inputs)
    refused = [name for name in SAMPLER_FLAGS if name in inputs and name not in takes]
    if refused:
        flag = "--" + refused[0].replace("_", "-")
        if not takes:
            raise UserError(f"{flag} is a setting of iterative samplers (diffusion and score models); "
                            f"{version_dir} is a {metadata['class_name']}, whose sample takes none")
        offered = ", ".join("--" + name.replace("_", "-") for name in takes)
        raise UserError(f"{flag} is not a setting of {version_dir}'s sampler (a {metadata['class_name']}: "
                        f"it takes {offered})")
    samples = _sample_in_batches(version_dir, inputs, args.num_samples)
    path = _save(samples, spec, args.out, args.sample_rate)
    print(f"tfgen sample: wrote {args.num_samples} samples of {version_dir} to {path}")


def _sample_inputs(args, spec):
    """The `sample` inputs the command line asks for, checked against the model's data."""
    from tfgen.export import reader

    inputs = reader.sample_rows(args.num_samples, args.seed, args.temperature, args.condition,
                                spec.num_classes)
    if args.length is not None:
        if spec.kind != "audio":
            raise UserError(f"--length sets the length of audio rows; this model's data is {spec.kind} "
                            f"{list(spec.event_shape)}")
        if args.length < 1:
            raise UserError(f"--length must be >= 1, got {args.length}")
        inputs["length"] = np.full([args.num_samples], args.length, SIGNATURES["sample"].input("length").dtype)
    _sampler_inputs(args, inputs)
    return inputs


#: The `sample` inputs of iterative samplers (`Capabilities.sample_inputs`) that have a flag.
SAMPLER_FLAGS = ("steps", "step_size", "eta", "guidance_scale")


def _sampler_inputs(args, inputs):
    """--steps, --step-size, --eta, --guidance-scale as `sample` inputs, checked here for
    a one-line error (the model checks them again, with its own cap on steps)."""
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    if args.step_size is not None and not (np.isfinite(args.step_size) and args.step_size > 0):
        raise UserError(f"--step-size must be a finite number > 0, got {args.step_size}")
    if args.eta is not None and not 0.0 <= args.eta <= 1.0:
        raise UserError(f"--eta must be in [0, 1], got {args.eta}")
    if args.guidance_scale is not None and not np.isfinite(args.guidance_scale):
        raise UserError(f"--guidance-scale must be finite, got {args.guidance_scale}")
    for name in SAMPLER_FLAGS:
        value = getattr(args, name)
        if value is not None:
            inputs[name] = np.full([args.num_samples], value, SIGNATURES["sample"].input(name).dtype)


SAMPLE_BATCH = 1024  # rows per signature call of a local `tfgen sample`
OUT_FORMATS = (".png", ".wav", ".npy")


def _check_out(path):
    """Refuse an --out whose extension names a format tfgen does not write (a .jpg
    holding PNG bytes helps no one); before any model is loaded."""
    if not path.lower().endswith(OUT_FORMATS):
        raise UserError(f"--out {path}: tfgen sample writes {', '.join(OUT_FORMATS)} "
                        "(PNG pictures, WAV audio, raw .npy arrays); name the file so")


def _sample_in_batches(version_dir, inputs, num_samples):
    """The export's `sample` signature over `inputs` in batches of SAMPLE_BATCH rows, with
    a progress bar when there is more than one: 100,000 rows in one call took 3.3 GB."""
    import numpy as np
    import tensorflow as tf

    from tfgen.export.reader import Export

    sample = Export(version_dir).function("sample")
    progress = None
    if num_samples > SAMPLE_BATCH:
        from tfgen.backend import keras

        progress = keras.utils.Progbar(num_samples, unit_name="sample")
    parts = []
    for start in range(0, num_samples, SAMPLE_BATCH):
        batch = {k: tf.constant(v[start:start + SAMPLE_BATCH]) for k, v in inputs.items()}
        try:
            parts.append(sample(**batch)["samples"].numpy())
        except tf.errors.InvalidArgumentError as e:  # a check inside the graph, e.g. length's cap
            raise UserError(graph_error_message(e.message)) from None
        if progress:
            progress.add(len(parts[-1]))
    return np.concatenate(parts)


def _run_sample_server(args):
    import grpc

    from tfgen.data.spec import DataSpec
    from tfgen.serving import Client

    _check_out(args.out)
    with Client(args.server) as client:
        try:
            spec = DataSpec.from_description(client.describe(args.model, args.version))
            inputs = _sample_inputs(args, spec)
            # Client.predict sends as many requests as the server's row limit needs.
            samples = client.predict(args.model, inputs, "sample", args.version)["samples"]
        except grpc.RpcError as e:
            raise UserError(f"{args.server}: {e.code().name}: {e.details()}") from None
        except ValueError as e:  # the model cannot describe itself: not a tfgen export
            raise UserError(str(e)) from None
    # Audio rows have the length asked for; every other axis is the described one.
    skip = 2 if spec.kind == "audio" else 1
    if tuple(samples.shape[skip:]) != tuple(spec.event_shape[skip - 1:]):
        raise UserError(f"model {args.model!r} returned samples of shape {list(samples.shape)}; its "
                        f"describe signature says [B, *{list(spec.event_shape)}]")
    path = _save(samples, spec, args.out, args.sample_rate)
    version = f"version {args.version}" if args.version else "latest version"
    print(f"tfgen sample: wrote {args.num_samples} samples of {args.model} ({version}, "
          f"{spec.kind} {list(spec.event_shape)}) from {args.server} to {path}")


def _save(samples, spec, path, sample_rate=None):
    """Writes samples as the data spec's kind is shown (see the module doc); returns the path."""
    import numpy as np

    from tfgen.data.visualize import save_samples_figure
    from tfgen.files import atomic_open

    if path.endswith(".npy"):
        with atomic_open(path, "wb") as f:
            np.save(f, samples)
        return path
    if spec.kind == "audio":
        if not path.endswith(".wav"):
            raise UserError(f"audio samples are written as WAV: use --out FILE.wav (or .npy), not {path}")
        return _save_wav(samples, spec, path, spec.sample_rate or sample_rate or DEFAULT_SAMPLE_RATE)
    if path.endswith(".wav"):
        raise UserError(f"{spec.kind} samples are written as PNG (or .npy), not WAV")
    return save_samples_figure(samples, spec, path)


def _save_wav(samples, spec, path, sample_rate, gap_seconds=0.1):
    """[B, T] or [B, T, 1] -> one 16-bit PCM mono WAV, the samples 0.1 s apart."""
    import wave

    import numpy as np

    x = np.asarray(samples, np.float64).reshape(len(samples), -1)
    if spec.levels:  # audio levels are mu-law codes (tfgen.data.audio)
        from tfgen.data.audio import mu_law_decode

        x = mu_law_decode(x, spec.levels)
    else:
        peak = float(np.max(np.abs(np.nan_to_num(x)), initial=0.0))
        if peak > 1.0:
            x = x / peak
    gap = np.zeros([len(x), int(gap_seconds * sample_rate)])
    pcm = np.concatenate([x, gap], axis=1).reshape(-1)[:-gap.shape[1] or None]
    pcm = np.round(np.clip(np.nan_to_num(pcm), -1.0, 1.0) * 32767).astype("<i2")
    from tfgen.files import atomic_path

    with atomic_path(path) as tmp, wave.open(tmp, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    return path


def run_check(args):
    from tfgen.export.conformance import check_export
    from tfgen.export.reader import resolve_version

    report = check_export(resolve_version(args.path))
    print(report.table())
    return 0 if report.ok else 1

