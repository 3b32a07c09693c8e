"""The noise-conditional score model: its sampler's inputs through the exported
signature, rows independent of their batch's settings, and its one-line config errors.
(The contract harness, tests/models/test_contract.py, covers export and conformance.)"""

import numpy as np
import pytest
import zoo

from tfgen.backend import tf
from tfgen.errors import UserError
from tfgen.export.conformance import check_export
from tfgen.export.saved_model import export_model
from tfgen.export.signatures import SignatureModule
from tfgen.models.diffusion.score_model import NCSN, geometric_ladder


@pytest.fixture(scope="module")
def signatures():
    return SignatureModule(zoo.cached("ncsn_vector"))


def test_the_sample_signature_takes_langevin_settings_with_the_model_s_defaults(signatures):
    model = zoo.cached("ncsn_vector")
    seeds = np.arange(4, dtype=np.int64)
    defaulted = signatures.call("sample", {"seed": seeds})["samples"]
    explicit = signatures.call("sample", {"seed": seeds, "steps": np.full(4, model.langevin_steps, np.int32),
                                          "step_size": np.full(4, model.langevin_step_size, np.float32)})
    np.testing.assert_array_equal(defaulted, explicit["samples"])
    np.testing.assert_allclose(defaulted, model.sample(tf.constant(seeds)).numpy(), atol=1e-5)
    more = signatures.call("sample", {"seed": seeds, "steps": np.full(4, 5, np.int32)})["samples"]
    assert not np.allclose(more, defaulted)


def test_a_row_s_sample_depends_only_on_its_own_settings(signatures):
    seeds = np.array([3, 4, 5], np.int64)
    steps = np.array([1, 6, 3], np.int32)
    step_size = np.array([0.01, 0.003, 0.02], np.float32)
    batch = signatures.call("sample", {"seed": seeds, "steps": steps, "step_size": step_size})["samples"]
    for row in range(3):
        alone = signatures.call("sample", {"seed": seeds[row:row + 1], "steps": steps[row:row + 1],
                                           "step_size": step_size[row:row + 1]})["samples"]
        np.testing.assert_allclose(alone[0], batch[row], atol=1e-5)


@pytest.mark.parametrize("inputs,named", [
    ({"steps": [0]}, "steps: Langevin steps per level must be >= 1"),
    ({"steps": [-3]}, "steps: Langevin steps per level must be >= 1"),
    ({"steps": [9]}, "steps: at most 8 Langevin steps per level"),
    ({"step_size": [float("nan")]}, "step_size: must be finite"),
    ({"step_size": [float("inf")]}, "step_size: must be finite"),
    ({"step_size": [0.0]}, "step_size: must be > 0"),
])
def test_bad_sampler_settings_are_invalid_argument_naming_the_input(signatures, inputs, named):
    dtypes = {"steps": np.int32, "step_size": np.float32}
    request = {"seed": np.array([1], np.int64), **{k: np.array(v, dtypes[k]) for k, v in inputs.items()}}
    with pytest.raises(tf.errors.InvalidArgumentError, match=named):
        signatures.call("sample", request)


def test_the_ladder_is_geometric_from_sigma_max_to_sigma_min():
    sigmas = geometric_ladder(3.0, 0.03, 5)
    np.testing.assert_allclose(sigmas, [3.0, 0.949, 0.3, 0.0949, 0.03], rtol=1e-3)


@pytest.mark.parametrize("kwargs,named", [
    ({"sigma_min": 2.0, "sigma_max": 1.0}, "sigma_min < sigma_max"),
    ({"num_levels": 1}, "num_levels >= 2"),
    ({"training_noise": "uniform"}, "training_noise"),
    ({"langevin_steps": 20, "max_langevin_steps": 10}, "langevin_steps"),
    ({"langevin_step_size": float("nan")}, "langevin_step_size"),
    ({"ema_decay": 1.0}, "ema_decay"),
    ({"ode_solver": "euler"}, "ode_solver"),
])
def test_bad_hyperparameters_are_one_line_errors_naming_them(kwargs, named):
    with pytest.raises(UserError, match=named):
        NCSN({"event_shape": [2]}, hidden_units=[4], embedding_dim=4, **kwargs)


@pytest.mark.slow
def test_a_dormand_prince_log_prob_exports_and_conforms(tmp_path):
    """TFP's adaptive solver runs in graph mode inside the SavedModel, core ops only, and
    the served log_prob is the model's."""
    model = NCSN({"event_shape": [2], "low": -3.0, "high": 3.0}, hidden_units=[8], embedding_dim=4, num_levels=3,
                 langevin_steps=2, max_langevin_steps=4, ode_solver="dopri5", ode_rtol=1e-4, ode_atol=1e-4)
    path = export_model(model, str(tmp_path / "dopri5"))
    report = check_export(path)
    assert report.ok, report.table()
    x = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    served = tf.saved_model.load(path).signatures["log_prob"](x=tf.constant(x))["log_prob"].numpy()
    np.testing.assert_allclose(served, model.log_prob(x).numpy(), rtol=1e-4, atol=1e-4)
