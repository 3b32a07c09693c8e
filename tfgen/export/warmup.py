"""TF Serving warmup requests: real inputs for every signature, as PredictionLog records.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
`tensorflow.serving.PredictionLog`) when it loads a version, so the first client request
does not pay for graph optimization and memory allocation. tfgen writes one
`predict_log` request per signature and batch size, with inputs the model itself
produces: `log_prob` and `encode` get the model's own samples, `decode` their codes.
"""

import numpy as np

from tfgen.backend import tf
from tfgen.export.signatures import signature_names

#: The default batch sizes of the warmup requests.
WARMUP_ROWS = (1, 4)


def example_inputs(model, rows, first_seed=0, temperature=None):
    """Real inputs of every signature of `model`: `{signature: {input: np.ndarray}}`.

    Args:
      model: a built tfgen model.
      rows: batch size.
      first_seed: seeds are `first_seed .. first_seed + rows - 1`.
      temperature: float for `sample`'s `temperature` input, or None to leave it out
        (the signature's default).
    """
    spec = model.data_spec
    seed = np.arange(first_seed, first_seed + rows, dtype=np.int64)
    common = {}
    if spec.conditional:
        common["condition"] = (seed % spec.num_classes).astype(np.int32)
    sample = {"seed": seed, **common}
    if temperature is not None:
        sample["temperature"] = np.full([rows], temperature, np.float32)
    inputs = {"sample": sample}
    names = signature_names(model)
    condition = common.get("condition")
    if len(names) > 1:
        x = model.sample(seed, tf.constant(sample.get("temperature", 1.0)), condition).numpy()
    if "log_prob" in names:
        inputs["log_prob"] = {"x": x, **common}
    if "encode" in names:
        inputs["encode"] = {"x": x, **common}
        inputs["decode"] = {"z": model.encode(x, condition).numpy(), **common}
    return inputs


def write_warmup(model, path, rows=WARMUP_ROWS):
    """Writes the warmup TFRecord to `path`: for each batch size in `rows`, one request
    per signature. Single-row `sample` requests omit `temperature` (its default)."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(path) as writer:
        for i, batch in enumerate(rows):
            temperature = None if batch == 1 else 1.0
            for name, inputs in example_inputs(model, batch, first_seed=100 * i, temperature=temperature).items():
                request = predict_pb2.PredictRequest()
                request.model_spec.signature_name = name
                for key, value in inputs.items():
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())
