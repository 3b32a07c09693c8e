"""A conditional model's classify signature through the server's Classify and
MultiInference, called with the tensorflow-serving-api stubs on loopback, answered as
TF Serving answers (classifier.cc, util.cc, multi_inference.cc)."""

import os

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    prediction_service_pb2_grpc,
)

from tfgen.backend import tf
from tfgen.scoring.classify import Classifier

NAME = "real_nvp_image_conditional"


@pytest.fixture(scope="module")
def served(exports):
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread

    base = os.path.dirname(exports.path(NAME))
    server = start_in_thread(ServerOptions(models=[ModelConfig("cond", base)], port=0, rest_api_port=None,
                                           file_system_poll_wait_seconds=0))
    channel = grpc.insecure_channel(server.grpc_address)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), exports
    channel.close()
    server.stop()


def _examples(x):
    return [tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=row.reshape(-1)))})) for row in x]


def _rows(exports, count):
    loaded = exports.loaded(NAME)
    seeds = tf.range(count, dtype=tf.int64)
    return loaded.signatures["sample"](seed=seeds, temperature=tf.ones([count]),
                                       condition=tf.cast(seeds % 3, tf.int32))["samples"].numpy()


def test_classify_answers_p_y_given_x_with_tf_serving_s_response(served):
    stub, exports = served
    x = _rows(exports, 5)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "cond"
    request.model_spec.signature_name = "classify"
    request.input.example_list.examples.extend(_examples(x))
    response = stub.Classify(request, timeout=30)
    assert (response.model_spec.name, response.model_spec.signature_name) == ("cond", "classify")
    assert response.model_spec.version.value == 1
    expected = np.exp(Classifier(exports.path(NAME))(x)[0])
    got = [[c.score for c in row.classes] for row in response.result.classifications]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [[c.label for c in row.classes] for row in response.result.classifications] == [["0", "1", "2"]] * 5
    # A context's features merge into every example (context bytes first, as TF Serving does).
    request.input.example_list_with_context.context.CopyFrom(_examples(x[:1])[0])
    request.input.example_list_with_context.examples.extend(tf.train.Example() for _ in range(2))
    with_context = stub.Classify(request, timeout=30)
    np.testing.assert_allclose([c.score for c in with_context.result.classifications[1].classes],
                               expected[0], rtol=1e-5, atol=1e-6)


def test_classify_and_multi_inference_errors_are_tf_serving_s(served):
    stub, exports = served
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "cond"
    request.model_spec.signature_name = "classify"
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(request, timeout=30)
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    request.input.example_list.examples.add()  # no feature x
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "x" in error.value.details()
    request.model_spec.signature_name = "log_prob"
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(request, timeout=30)
    assert error.value.details() == ("Expected classification signature method_name to be "
                                     "tensorflow/serving/classify. Was: tensorflow/serving/predict")


def test_multi_inference_runs_each_classify_task_on_the_one_input(served):
    stub, exports = served
    x = _rows(exports, 3)
    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add(method_name="tensorflow/serving/classify")
    task.model_spec.name = "cond"
    task.model_spec.signature_name = "classify"
    request.input.example_list.examples.extend(_examples(x))
    response = stub.MultiInference(request, timeout=30)
    single = classification_pb2.ClassificationRequest(input=request.input)
    single.model_spec.CopyFrom(task.model_spec)
    assert len(response.results) == 1
    assert response.results[0].classification_result == stub.Classify(single, timeout=30).result
    assert response.results[0].model_spec.signature_name == "classify"
    request.tasks.add(method_name="tensorflow/serving/classify").model_spec.CopyFrom(task.model_spec)
    with pytest.raises(grpc.RpcError) as error:
        stub.MultiInference(request, timeout=30)
    assert error.value.details() == "Duplicate evaluation of signature: classify"


def test_tfgen_classify_writes_the_bayes_decision_and_rejects_below_the_threshold(exports, tmp_path, capsys):
    from tfgen.cli import main
    from tfgen.scoring.outputs import read_records

    x = _rows(exports, 5)
    x[4, 0, 0, 0] = np.nan
    np.save(tmp_path / "x.npy", x)
    class_log_prob, marginal = Classifier(exports.path(NAME))(x[:4])
    reject_below = float(np.sort(marginal)[1])  # rejects the lowest of the four
    out = tmp_path / "classes.parquet"
    assert main(["classify", "--model", os.path.dirname(exports.path(NAME)), "--input", str(tmp_path / "x.npy"),
                 "--out", str(out), "--reject-below", repr(reject_below)]) == 0
    rows = read_records(str(out))
    assert [r["class"] for r in rows[:4]] == np.argmax(class_log_prob, 1).tolist()
    assert [r["rejected"] for r in rows[:4]] == (marginal < reject_below).tolist() and sum(marginal < reject_below) == 1
    np.testing.assert_allclose([r["log_prob"] for r in rows[:4]], marginal, rtol=1e-6)
    assert "non-finite" in rows[4]["error"] and rows[4]["class"] is None
    assert "4 classified, 1 of them rejected" in capsys.readouterr().out
