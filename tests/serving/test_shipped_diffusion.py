"""The shipped digits DDPM served by `tfgen serve` (a real server on loopback ports):
its samples for any sampler inputs (steps, eta, guidance_scale per row) equal the Python
API's for the same seeds, and bad sampler inputs are INVALID_ARGUMENT naming the input."""

import os

import grpc
import numpy as np
import pytest

from serving_helpers import SHIPPED_ROOT, Rest
from tfgen.export.reader import read_metadata, resolve_version
from tfgen.models.base import model_from_config
from tfgen.serving import Client
from tfgen.training.init_from import restore_weights

ROOT = SHIPPED_ROOT
NAME = "digits_ddpm"
pytestmark = [pytest.mark.slow,  # its server's warmup (tests/serving/serving_helpers.py, SERVED_WHEN_SLOW)
              pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, NAME)), reason="digits_ddpm not shipped")]


@pytest.fixture
def server(slow_shipped_server):
    """The session's server of the digits DDPM (tests/serving/conftest.py)."""
    return slow_shipped_server


@pytest.fixture(scope="module")
def python_model():
    version = resolve_version(os.path.join(ROOT, NAME))
    model = model_from_config("DDPM", read_metadata(version)["config"])
    restore_weights(model, version)
    return model


INPUTS = {"seed": np.array([11, 12, 13], np.int64), "condition": np.array([3, 7, 0], np.int32),
          "steps": np.array([8, 3, 12], np.int32), "eta": np.array([0.0, 1.0, 0.5], np.float32),
          "guidance_scale": np.array([1.0, 2.5, 0.0], np.float32)}


def test_served_samples_equal_the_python_api_for_per_row_sampler_inputs(server, python_model):
    want = python_model.sample(INPUTS["seed"], 1.0, INPUTS["condition"], steps=INPUTS["steps"], eta=INPUTS["eta"],
                               guidance_scale=INPUTS["guidance_scale"]).numpy()
    with Client(server.grpc_address) as client:
        got = client.predict(NAME, INPUTS, "sample")["samples"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    status, body = Rest(server.rest_url).post(f"/v1/models/{NAME}:predict", {
        "signature_name": "sample", "inputs": {k: v.tolist() for k, v in INPUTS.items()}})
    assert status == 200, body
    outputs = body["outputs"]  # TF Serving's REST form: a lone output is the list itself
    samples = outputs["samples"] if isinstance(outputs, dict) else outputs
    np.testing.assert_allclose(np.array(samples, np.float32), want, atol=1e-5)
    assert len({tuple(np.ravel(w)) for w in want}) == 3  # three different digits


@pytest.mark.parametrize("name,value,message", [
    ("steps", 0, "steps: must be >= 1"), ("steps", 1001, "steps: at most 1000"),
    # A NaN is refused by the server itself before the graph, naming the input.
    ("eta", 1.5, "eta: must be in [0, 1] (got 1.5"), ("guidance_scale", np.nan, "input 'guidance_scale' of signature 'sample'"),
])
def test_bad_sampler_inputs_are_invalid_argument_naming_the_input(server, name, value, message):
    inputs = {"seed": np.array([1, 2], np.int64), "condition": np.array([0, 1], np.int32),
              name: np.full([2], value, INPUTS[name].dtype)}
    with Client(server.grpc_address) as client:
        with pytest.raises(grpc.RpcError) as error:
            client.predict(NAME, inputs, "sample")
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in error.value.details()
        # The server keeps serving.
        assert client.predict(NAME, {"seed": np.array([1], np.int64), "condition": np.array([0], np.int32),
                                     "steps": np.array([2], np.int32)}, "sample")["samples"].shape == (1, 8, 8, 1)
