"""The server loads only what an export's signatures call (`tfgen.serving.loader`) and
answers exactly as through `tf.saved_model.load`; other exports fall back to it."""

import gc
import glob
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.eager import context

import toy_savedmodels as savedmodels
from tfgen.serving import loader
from tfgen.serving.model_manager import Servable
from tfgen.serving.signatures import InputLimits


def _answers(servable, feeds_by_signature):
    return {name: servable.signature(name).run(feeds) for name, feeds in feeds_by_signature.items()}


def _feeds(conditional):
    """Inputs for every signature: several seeds and temperatures, classes, strings."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, savedmodels.D)).astype(np.float32)
    feeds = {
        "sample": {"seed": np.arange(5, dtype=np.int64),
                   "temperature": np.linspace(0.5, 1.5, 5).astype(np.float32)},
        "log_prob": {"x": x},
        "encode": {"x": x},
        "decode": {"z": x},
        "echo": {"text": np.array([b"", b"abc", "\u00e9".encode()], dtype=object)},
    }
    if conditional:
        for name in ("sample", "log_prob"):
            feeds[name]["condition"] = np.array([0, 1, 2, 0, 1], np.int32)
    return feeds


def _registered(servable):
    """Names of the functions a SignaturesOnly load registered with the eager context."""
    return list(servable.loaded.function_names)


@pytest.mark.parametrize("name", ["toy", "cond"])
def test_signatures_only_answers_bit_for_bit_as_tf_saved_model_load(exported, name):
    path = exported[name]
    reference = Servable(name, 1, path, InputLimits(), signatures_only=False)
    served = Servable(name, 1, path, InputLimits())
    assert isinstance(served.loaded, loader.SignaturesOnly)
    assert not isinstance(reference.loaded, loader.SignaturesOnly)
    assert served.signatures.keys() == reference.signatures.keys()

    feeds = _feeds(name == "cond")
    want, got = _answers(reference, feeds), _answers(served, feeds)
    for request in reference.warmup_requests():
        key = request.model_spec.signature_name
        want[f"warmup {key}"], got[f"warmup {key}"] = reference.predict(request), served.predict(request)
    for key in want:
        assert want[key].keys() == got[key].keys()
        for alias in want[key]:
            assert got[key][alias].dtype == want[key][alias].dtype, (key, alias)
            np.testing.assert_array_equal(got[key][alias], want[key][alias], err_msg=f"{key} {alias}")

    # Only the functions the signatures reach: not the export's checkpointing functions.
    library = served.meta_graph.graph_def.library.function
    registered = _registered(served)
    assert 0 < len(registered) < len(library)
    assert not [n for n in registered if "traced_save" in n or "traced_restore" in n]
    assert not [f for f in library if "_tfgen_load" in f.signature.name]  # copies renamed


def test_two_loads_of_one_export_coexist_and_each_removes_its_own_functions(exported):
    path = exported["cond"]
    first = Servable("cond", 1, path, InputLimits())
    second = Servable("cond", 2, path, InputLimits())
    first_names, second_names = _registered(first), _registered(second)
    assert not set(first_names) & set(second_names)  # renamed per load
    feeds = _feeds(True)["log_prob"]
    want = first.signature("log_prob").run(feeds)

    del first
    gc.collect()
    ctx = context.context()
    assert not [n for n in first_names if ctx.has_function(n)]
    assert all(ctx.has_function(n) for n in second_names)
    got = second.signature("log_prob").run(feeds)
    np.testing.assert_array_equal(got["log_prob"], want["log_prob"])


def test_a_signature_holding_a_lookup_table_loads_with_tf_saved_model_load(tmp_path, caplog):
    class Table(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(["a", "b"]), tf.constant([1, 2], tf.int64)), default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="key")])
        def lookup(self, key):
            return {"value": self.table.lookup(key)}

    module = Table()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"lookup": module.lookup})
    caplog.set_level(logging.INFO, logger="tfgen.serving")
    servable = Servable("table", 1, str(tmp_path / "1"), InputLimits())
    assert not isinstance(servable.loaded, loader.SignaturesOnly)
    assert "with tf.saved_model.load: signature 'lookup' captures a resource" in caplog.text
    got = servable.signature("lookup").run({"key": np.array([b"b", b"z", b"a"], dtype=object)})
    np.testing.assert_array_equal(got["value"], [2, -1, 1])


def test_a_tf1_saved_model_loads_with_tf_saved_model_load(tmp_path, caplog):
    path = str(tmp_path / "1")
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        weight = tf.compat.v1.get_variable("weight", initializer=3.0)
        session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(path)
        signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": x * weight})
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"triple": signature})
        builder.save()
    caplog.set_level(logging.INFO, logger="tfgen.serving")
    servable = Servable("tf1", 1, path, InputLimits())
    assert not isinstance(servable.loaded, loader.SignaturesOnly)
    assert "no object graph (a TF1 SavedModel)" in caplog.text
    got = servable.signature("triple").run({"x": np.array([1.0, -2.0], np.float32)})
    np.testing.assert_array_equal(got["y"], [3.0, -6.0])


def test_a_version_without_its_variables_fails_to_load_naming_the_missing_file(exported, tmp_path):
    path = str(tmp_path / "1")
    shutil.copytree(exported["toy"], path)
    for data in glob.glob(os.path.join(path, "variables", "variables.data-*")):
        os.remove(data)
    with pytest.raises(tf.errors.OpError, match="variables.data-00000-of-00001; No such file"):
        Servable("toy", 1, path, InputLimits())


def test_load_signatures_only_false_serves_through_tf_saved_model_load(model_root):
    from serving_helpers import make_server
    from tfgen.cli import build_parser
    from tfgen.serving.cli import build_options
    from tfgen.serving.model_manager import ModelConfig

    args = build_parser().parse_args(["serve", "--model_base_path", str(model_root / "toy"),
                                      "--load_signatures_only=false"])
    assert build_options(args).load_signatures_only is False
    feeds = _feeds(False)["log_prob"]
    answers = []
    for signatures_only in (False, True):
        server = make_server([ModelConfig("toy", str(model_root / "toy"))],
                             load_signatures_only=signatures_only)
        try:
            servable = server.server.manager.servable("toy")
            assert isinstance(servable.loaded, loader.SignaturesOnly) is signatures_only
            answers.append(servable.signature("log_prob").run(feeds))
        finally:
            server.stop()
    np.testing.assert_array_equal(answers[0]["log_prob"], answers[1]["log_prob"])
