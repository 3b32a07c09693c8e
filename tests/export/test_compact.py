"""`compact_saved_model` shrinks saved_model.pb and changes nothing any loader computes."""

import os
import shutil

import numpy as np
import pytest
import tiny_models

from tfgen.backend import tf
from tfgen.export.compact import compact_saved_model
from tfgen.export.saved_model import SAVE_OPTIONS
from tfgen.export.signatures import SignatureModule, build_model
from tfgen.export.standalone import read_signature_defs


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(plain, compacted): one conditional flow saved twice, the second compacted."""
    model = tiny_models.image_flow()
    build_model(model)
    module = SignatureModule(model)
    root = tmp_path_factory.mktemp("compact")
    plain, compacted = str(root / "plain"), str(root / "compacted")
    tf.saved_model.save(module, plain, signatures=module.signatures(), options=SAVE_OPTIONS)
    shutil.copytree(plain, compacted)
    sizes = compact_saved_model(compacted)
    return plain, compacted, sizes


def _answers(path):
    loaded = tf.saved_model.load(path)
    seed = tf.range(5, dtype=tf.int64)
    condition = tf.constant([0, 1, 2, 0, 1], tf.int32)
    sample = loaded.signatures["sample"](seed=seed, temperature=tf.fill([5], 0.8), condition=condition)
    x = sample["samples"]
    z = loaded.signatures["encode"](x=x, condition=condition)["z"]
    return {"samples": x, **loaded.signatures["log_prob"](x=x, condition=condition), "z": z,
            **loaded.signatures["decode"](z=z, condition=condition),
            "default": loaded.sample(seed=seed, condition=condition)["samples"]}


def test_outputs_are_bit_identical(pair):
    plain, compacted, _ = pair
    before, after = _answers(plain), _answers(compacted)
    assert set(before) == set(after)
    for key in before:
        np.testing.assert_array_equal(after[key].numpy(), before[key].numpy(), err_msg=key)


def test_the_graph_shrinks_and_keeps_its_contract_names(pair):
    plain, compacted, (before, after) = pair
    assert before == os.path.getsize(os.path.join(plain, "saved_model.pb"))
    assert after == os.path.getsize(os.path.join(compacted, "saved_model.pb"))
    assert after < before / 2
    meta_plain, defs_plain = read_signature_defs(plain)
    meta_compacted, defs_compacted = read_signature_defs(compacted)
    assert defs_compacted == defs_plain  # names, tensor names, dtypes, shapes, defaults
    assert meta_compacted.saver_def == meta_plain.saver_def
    assert meta_compacted.object_graph_def == meta_plain.object_graph_def
    assert ({f.signature.name for f in meta_compacted.graph_def.library.function}
            == {f.signature.name for f in meta_plain.graph_def.library.function})
    longest = max(len(n.name) for f in meta_compacted.graph_def.library.function for n in f.node_def)
    assert longest <= 4


def test_the_fingerprint_is_the_new_file_s(pair, tmp_path):
    from tensorflow.core.protobuf import fingerprint_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    def fingerprint(path):
        proto = fingerprint_pb2.FingerprintDef.FromString(open(os.path.join(path, "fingerprint.pb"), "rb").read())
        proto.ClearField("uuid")  # random per write
        return proto

    plain, compacted, _ = pair
    again = str(tmp_path / "again")
    shutil.copytree(compacted, again)
    os.remove(os.path.join(again, "fingerprint.pb"))
    fingerprinting_utils.write_fingerprint(again)
    assert fingerprint(compacted) == fingerprint(again)
    assert fingerprint(compacted).saved_model_checksum != fingerprint(plain).saved_model_checksum


def test_the_session_loader_restores_the_renamed_variables(pair):
    """TF Serving's path: the TF1 loader runs the restore function on the renamed handles."""
    plain, compacted, _ = pair
    results = []
    for path in (plain, compacted):
        with tf.compat.v1.Session(graph=tf.Graph()) as session:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
            signature = meta_graph.signature_def["log_prob"]
            feeds = {signature.inputs["x"].name: np.full([2, 4, 4, 1], 3.0, np.float32),
                     signature.inputs["condition"].name: np.array([0, 2], np.int32)}
            results.append(session.run(signature.outputs["log_prob"].name, feeds))
    np.testing.assert_array_equal(results[1], results[0])


def test_an_export_with_custom_gradients_is_refused(tmp_path):
    """Saved custom gradients find forward tensors by name: renaming would break loading."""
    @tf.custom_gradient
    def clipped(x):
        return tf.identity(x), lambda dy: tf.clip_by_value(dy, -1.0, 1.0)

    module = tf.Module()
    module.f = tf.function(lambda x: {"y": clipped(x)}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path), signatures={"f": module.f},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=True))
    before = open(tmp_path / "saved_model.pb", "rb").read()
    with pytest.raises(ValueError, match="experimental_custom_gradients=False"):
        compact_saved_model(str(tmp_path))
    assert open(tmp_path / "saved_model.pb", "rb").read() == before
