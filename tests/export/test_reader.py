"""`tfgen.export.reader.Export`, the local commands' loader: the server's signatures-only
loader, defaults filled as a served model fills them, answers equal to
`tf.saved_model.load`'s."""

import os

import numpy as np
import pytest

from tfgen.backend import tf

from tfgen.errors import UserError
from tfgen.export.reader import Export, resolve_version, sample_rows
from tfgen.serving import loader

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "saved_models")


@pytest.mark.parametrize("name", ["two_moons_nsf", "digits_conditional_vae"])
def test_export_loads_signatures_only_and_answers_as_tf_saved_model_load(name):
    path = resolve_version(os.path.join(SHIPPED, name))
    export = Export(path)
    assert isinstance(export._loaded, loader.SignaturesOnly)
    reference = tf.saved_model.load(path)
    num_classes = 10 if "condition" in export.describe("sample")["inputs"] else None
    rows = sample_rows(5, first_seed=3, num_classes=num_classes)
    del rows["temperature"]  # the SignatureDef's default, 1.0, as the restored function's
    ours = export.function("sample")(**rows)
    theirs = reference.sample(**{k: tf.constant(v) for k, v in rows.items()})
    assert sorted(ours) == sorted(theirs)
    for alias in theirs:
        np.testing.assert_array_equal(ours[alias].numpy(), theirs[alias].numpy())

    feeds = {"x": ours["samples"].numpy()}
    if num_classes:
        feeds["condition"] = rows["condition"]
    ours = export.function("log_prob")(**feeds)
    theirs = reference.signatures["log_prob"](**{k: tf.constant(v) for k, v in feeds.items()})
    for alias in theirs:
        np.testing.assert_array_equal(ours[alias].numpy(), theirs[alias].numpy())


def test_a_default_stands_for_every_row_and_a_sent_value_overrides_it():
    export = Export(resolve_version(os.path.join(SHIPPED, "two_moons_nsf")))
    sample = export.function("sample")
    seeds = np.arange(4, dtype=np.int64)
    defaulted = sample(seed=seeds)["samples"].numpy()
    assert defaulted.shape == (4, 2)
    np.testing.assert_array_equal(defaulted, sample(seed=seeds, temperature=np.ones(4, np.float32))["samples"])
    assert not np.array_equal(defaulted, sample(seed=seeds, temperature=np.full(4, 0.5, np.float32))["samples"])


def test_an_input_without_a_default_is_required_and_unknown_names_are_refused():
    export = Export(resolve_version(os.path.join(SHIPPED, "two_moons_nsf")))
    assert export.describe("sample")["defaults"] == ["temperature"]
    with pytest.raises(TypeError, match="expected inputs .*seed"):
        export.function("sample")(temperature=np.ones(2, np.float32))
    with pytest.raises(TypeError, match="expected inputs"):
        export.function("sample")(seed=np.arange(2), colour=np.ones(2, np.float32))
    with pytest.raises(UserError, match="has no signature 'classify'.*'log_prob'"):
        export.function("classify")
