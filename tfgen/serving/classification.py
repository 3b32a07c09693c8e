"""TF Serving's Classify API on a classification SignatureDef, with its checks and messages.

What `tensorflow_model_server` does (servables/tensorflow/classifier.cc, util.cc), in
its order:

1. the signature is found and its method_name is `tensorflow/serving/classify`
   (`check_example_method`);
2. it has one input, `inputs`, and one or two outputs among `classes` and `scores`
   (`check_classification_signature`);
3. the request's `Input` becomes one serialized `tf.train.Example` per example; with
   `example_list_with_context`, each is the context's bytes followed by the example's
   (so protobuf merges them: the example's scalar fields win, repeated values are
   appended); no example is "Input is empty." (`serialized_examples`);
4. the outputs are `[batch, num_classes]`, classes DT_STRING and scores DT_FLOAT, both
   with the request's batch size and, if both, the same number of classes
   (`classification_result`).

The example count is capped (`InputLimits.max_rows`) before any example is serialized.
"""

import numpy as np
from tensorflow_serving.apis import classification_pb2

from tfgen.serving.errors import Code, ServingError, invalid_argument

CLASSIFY_INPUTS = "inputs"
CLASSES, SCORES = "classes", "scores"


def check_classification_signature(signature_def):
    """TF Serving's PreProcessClassification; returns the output aliases to fetch."""
    if len(signature_def.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature_def.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(signature_def.outputs)}")
    if CLASSIFY_INPUTS not in signature_def.inputs:
        raise ServingError(Code.FAILED_PRECONDITION,
                           f"No classification inputs found in SignatureDef: {signature_def}")
    outputs = [alias for alias in (CLASSES, SCORES) if alias in signature_def.outputs]
    if not outputs:
        raise ServingError(Code.FAILED_PRECONDITION,
                           'Expected classification signature outputs to contain at least one of '
                           f'"{CLASSES}" or "{SCORES}". Signature was: {signature_def}')
    return outputs


def serialized_examples(request_input, max_rows):
    """The `[N]` object array of serialized Examples of a `tensorflow.serving.Input`."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples, context = request_input.example_list.examples, b""
    elif kind == "example_list_with_context":
        examples = request_input.example_list_with_context.examples
        context = request_input.example_list_with_context.context.SerializeToString()
    else:
        examples, context = (), b""
    if len(examples) == 0:
        raise invalid_argument("Input is empty.")
    if len(examples) > max_rows:
        raise invalid_argument(f"Input has {len(examples)} examples; this server takes at most "
                               f"{max_rows} per request (--max_rows_per_request)")
    serialized = np.empty([len(examples)], object)
    for i, example in enumerate(examples):
        serialized[i] = context + example.SerializeToString()
    return serialized


def classification_result(outputs, num_examples):
    """TF Serving's PostProcessClassificationResult: a `ClassificationResult`."""
    classes, scores = outputs.get(CLASSES), outputs.get(SCORES)
    for alias, value, kind, dtype in ((CLASSES, classes, "SO", "DT_STRING"), (SCORES, scores, "f", "DT_FLOAT")):
        if value is None:
            continue
        if value.ndim != 2:
            raise invalid_argument(f"Expected Tensor shape: [batch_size num_classes] but got "
                                   f"[{','.join(map(str, value.shape))}]")
        if value.dtype.kind not in kind or (alias == SCORES and value.dtype != np.float32):
            raise invalid_argument(f"Expected {alias} Tensor of {dtype}. Got: {value.dtype}")
        if value.shape[0] != num_examples:
            raise invalid_argument(f"Expected {alias} output batch size of {num_examples}. "
                                   f"Got: {value.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(f"Tensors class and score should match in dim_size(1). Got "
                               f"{classes.shape[1]} vs. {scores.shape[1]}")
    num_classes = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for i in range(num_examples):
        classifications = result.classifications.add()
        for c in range(num_classes):
            entry = classifications.classes.add()
            if classes is not None:
                label = classes[i, c]
                entry.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                entry.score = float(scores[i, c])
    return result
