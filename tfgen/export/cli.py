"""`tfgen sample` and `tfgen check`: argument parsing and printing only.

`tfgen sample --model saved_models/NAME[/VERSION] -n 16 --out grid.png` calls an
export's `sample` signature in this process (the newest version if none is named) and
writes an image grid, a 2-D scatter plot, or (for `--out *.npy`) the raw array.
`tfgen sample --server HOST:PORT --model NAME -n 16 --out grid.png` calls the `sample`
signature of a model served by `tfgen serve` or `tensorflow_model_server` over gRPC
(tfgen.serving.Client). A TF Serving client cannot read assets.extra/tfgen.json, so the
data spec is inferred from the signature metadata (GetModelMetadata): the event shape is
the `samples` output shape without its batch dim, the model is conditional if `sample`
takes a `condition`, and the kind follows the event shape:

    [H, W, C]     image  -> image grid PNG, scaled by --levels L (0 .. L-1) if given,
                            else by the samples' own min .. max
    [2]           vector -> 2-D scatter PNG
    [T] or [T, 1] audio  -> 16-bit PCM mono WAV (T > 2)

Locally the export's tfgen.json decides the kind instead. Audio is written as one WAV,
the samples one after another with 0.1 s of silence between; values are mapped to
-1 .. 1 by --levels (or the data spec's levels) if known, else taken as they are when
within -1 .. 1 and divided by the largest magnitude otherwise. `--out *.npy` writes the
raw samples whatever the kind.

`tfgen check PATH` runs the SavedModel conformance checks and exits 1 if any fails.
"""

import os


def register(subparsers):
    sample = subparsers.add_parser(
        "sample", help="draw samples from an exported model and save a picture",
        description="Calls the `sample` signature of an export (or, with --server, of a served "
                    "model over gRPC) with seeds S .. S+n-1 and writes an image grid or 2-D "
                    "scatter PNG, a WAV for audio, or the raw array for --out *.npy. The kind "
                    "comes from the export's tfgen.json, or with --server from the `samples` "
                    "shape: [B, H, W, C] image, [B, 2] scatter, [B, T] or [B, T, 1] audio.",
    )
    sample.add_argument("--model", required=True, metavar="saved_models/NAME[/VERSION] | NAME",
                        help="an export (without VERSION the newest version); with --server, "
                             "the served model's name")
    sample.add_argument("--server", metavar="HOST:PORT",
                        help="sample from a running TF Serving API server (gRPC) instead of "
                             "loading the export in this process")
    sample.add_argument("--version", type=int, metavar="N",
                        help="model version (default: the newest / the server's default)")
    sample.add_argument("--levels", type=int, metavar="L",
                        help="with --server: the data has L quantization levels 0 .. L-1 "
                             "(scales pictures and audio; default: the samples' own range)")
    sample.add_argument("--sample-rate", type=int, default=16000, metavar="HZ",
                        help="WAV sample rate for audio models (default 16000)")
    sample.add_argument("-n", "--num-samples", type=int, default=16, metavar="N", help="rows (default 16)")
    sample.add_argument("--out", required=True, metavar="PATH", help="output .png (.wav for audio; .npy for raw samples)")
    sample.add_argument("--temperature", type=float, default=1.0, metavar="T", help="latent scale (default 1.0)")
    sample.add_argument("--condition", type=int, metavar="C",
                        help="class id of a conditional model (default: cycle through the classes; "
                             "required with --server)")
    sample.add_argument("--seed", type=int, default=0, metavar="S", help="first seed (default 0)")
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

    model = args.model if args.version is None else os.path.join(args.model, str(args.version))
    version_dir = reader.resolve_version(model)
    spec = DataSpec.from_dict(reader.read_metadata(version_dir)["data_spec"])
    inputs = reader.sample_rows(args.num_samples, args.seed, args.temperature, args.condition,
                                spec.num_classes)
    samples = _draw(version_dir, inputs)
    path = _save(samples, spec, args.out, args.sample_rate)
    print(f"tfgen sample: wrote {args.num_samples} samples of {version_dir} to {path}")


def _draw(version_dir, inputs):
    """Samples from the export on disk."""
    from tfgen.export import reader

    return reader.call_signature(version_dir, "sample", inputs)["samples"]


def _run_sample_server(args):
    import grpc
    import numpy as np

    from tfgen.errors import UserError
    from tfgen.export import reader
    from tfgen.serving import Client

    inputs = reader.sample_rows(args.num_samples, args.seed, args.temperature)
    with Client(args.server) as client:
        try:
            signature = client.signature(args.model, "sample", args.version)
            if "condition" in signature["inputs"]:
                if args.condition is None:
                    raise UserError(
                        f"model {args.model!r} is conditional: pass --condition C (a TF Serving "
                        "server does not publish the number of classes)")
                inputs["condition"] = np.full([args.num_samples], args.condition, np.int32)
            elif args.condition is not None:
                raise ValueError("this model is unconditional: drop the condition")
            response = client.predict_response(args.model, inputs, "sample", args.version)
        except grpc.RpcError as e:
            raise UserError(f"{args.server}: {e.code().name}: {e.details()}") from None
    from tfgen.serving.tensors import proto_to_ndarray

    samples = proto_to_ndarray(response.outputs["samples"], "samples", max_elements=2**62)
    spec = _spec_from_shape(samples.shape[1:], args.levels)
    path = _save(samples, spec, args.out, args.sample_rate)
    print(f"tfgen sample: wrote {args.num_samples} samples of {args.model} version "
          f"{response.model_spec.version.value} ({spec.kind} {list(spec.event_shape)}) from "
          f"{args.server} to {path}")


def _spec_from_shape(event_shape, levels=None):
    """The data spec a client can infer from the `samples` shape (see the module doc)."""
    from tfgen.data.spec import DataSpec

    event_shape = tuple(int(d) for d in event_shape)
    if len(event_shape) == 3:
        kind = "image"
    elif event_shape == (2,):
        kind = "vector"
    elif len(event_shape) == 1 or (len(event_shape) == 2 and event_shape[1] == 1):
        kind = "audio"
    else:
        raise ValueError(f"no picture or sound for samples of shape [B, *{list(event_shape)}]; "
                         "use --out FILE.npy for the raw array")
    return DataSpec(event_shape, kind=kind, levels=levels)


def _save(samples, spec, path, sample_rate=16000):
    import numpy as np

    from tfgen.data.visualize import save_samples_figure

    if path.endswith(".npy"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        np.save(path, samples)
        return path
    if spec.kind == "audio":
        if not path.endswith(".wav"):
            raise ValueError(f"audio samples are written as WAV: use --out FILE.wav (or .npy), not {path}")
        return _save_wav(samples, spec, path, sample_rate)
    if path.endswith(".wav"):
        raise ValueError(f"{spec.kind} samples are written as PNG (or .npy), not WAV")
    return save_samples_figure(samples, spec, path)


def _save_wav(samples, spec, path, sample_rate, gap_seconds=0.1):
    """[B, T] or [B, T, 1] -> one 16-bit PCM mono WAV, the samples 0.1 s apart."""
    import wave

    import numpy as np

    x = np.asarray(samples, np.float64).reshape(len(samples), -1)
    if spec.levels:
        x = x / (spec.levels - 1) * 2.0 - 1.0
    else:
        peak = float(np.max(np.abs(np.nan_to_num(x)), initial=0.0))
        if peak > 1.0:
            x = x / peak
    gap = np.zeros([len(x), int(gap_seconds * sample_rate)])
    pcm = np.concatenate([x, gap], axis=1).reshape(-1)[:-gap.shape[1] or None]
    pcm = np.round(np.clip(np.nan_to_num(pcm), -1.0, 1.0) * 32767).astype("<i2")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    with wave.open(tmp, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    os.replace(tmp, path)
    return path


def run_check(args):
    from tfgen.export.conformance import check_export
    from tfgen.export.reader import resolve_version

    report = check_export(resolve_version(args.path))
    print(report.table())
    return 0 if report.ok else 1

