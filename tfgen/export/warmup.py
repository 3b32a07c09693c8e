"""TF Serving warmup requests: real inputs for every signature, as PredictionLog records.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
`tensorflow.serving.PredictionLog`) when it loads a version, so the first client request
does not pay for graph optimization and memory allocation. tfgen writes one
`predict_log` request per signature (one row), with the example rows the contract
table gives (`tfgen.contract.SIGNATURES`, made by `standalone.example_requests`): seeds,
classes, and what the export itself answered, so `log_prob` and `encode` get the
model's own samples and `decode` their codes.
"""

from tfgen.backend import tf
from tfgen.contract import signature_plan
from tfgen.export.standalone import example_requests

#: The default batch sizes of the warmup requests: one. A signature's batch dimension is
#: dynamic, so its function is instantiated (optimized, kernels made) once for every batch
#: size; a second size warms nothing new and cost the digits DDPM's load a second run of
#: its 1000-pass bound (docs/benchmarks.md, "Cold start").
WARMUP_ROWS = (1,)


def warmup_requests(module, rows=WARMUP_ROWS):
    """`[(signature, {input: np.ndarray})]`: for each batch size in `rows`, one request
    per signature of the `SignatureModule` `module`. Single-row requests leave out the
    inputs that have defaults (`sample`'s temperature), so the defaults are warmed too.

    Raises:
      RuntimeError: a signature failed on its example rows.
    """
    plan = signature_plan(module.capabilities)
    requests = []
    for i, batch in enumerate(rows):
        for name, inputs, outputs in example_requests(plan, batch, 100 * i, module.call,
                                                      omit_defaults=batch == 1):
            if isinstance(outputs, Exception):
                raise RuntimeError(f"signature {name!r} failed on its {batch}-row warmup request: "
                                   f"{outputs}") from outputs
            requests.append((name, inputs))
    return requests


def write_warmup(module, path, rows=WARMUP_ROWS):
    """Writes the warmup TFRecord of `module` (see `warmup_requests`) to `path`."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(path) as writer:
        for name, inputs in warmup_requests(module, rows):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = name
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
