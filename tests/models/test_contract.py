"""One contract test over every model class (after keras-hub's `run_backbone_test` and
zuko's tests/test_flows.py): whatever the family, a model that keeps the contract of
docs/architecture.md passes these, driven only by what the model declares.

Every entry of tests/zoo.py (every registered class, plus the unregistered test models)
gets the cheap checks; `zoo.REPRESENTATIVE`, one entry per class, gets the export: the
SavedModel conforms (a loader with no tfgen, the TF1 Session loader, saved_model_cli)
and answers as the model does. A registered class without a zoo entry fails
`test_every_registered_class_has_a_zoo_entry`, so each new family is covered by adding
its entry.
"""

import json
import os
import shutil

import numpy as np
import pytest
import zoo
from zoo import cached, perturb_weights, slow_unless

from tfgen.backend import keras, tf
from tfgen.export.conformance import check_export
from tfgen.export.saved_model import export_model
from tfgen.export.signatures import SignatureModule, exported_variables
from tfgen.models.base import get_model_class, registered_models
from tfgen.training.init_from import restore_weights

NAMES = sorted(zoo.ZOO)
# The per-entry checks run by default on zoo.CONTRACT_DEFAULT, every entry under -m slow.
DEFAULT_ENTRIES = slow_unless(lambda n: n in zoo.CONTRACT_DEFAULT, NAMES)


def rebuilt(name):
    """A fresh model from `cached(name)`'s config after a JSON round trip, built."""
    class_name, _ = zoo.ZOO[name]
    config = json.loads(json.dumps(cached(name).get_config()))
    model = get_model_class(class_name).from_config(config)
    x, condition = zoo.example_batch(name)
    model(x if condition is None else (x, condition))
    assert model.get_config() == cached(name).get_config()
    return model


def rows(model, batch):
    """Seeds, per-row classes (or None) and data rows of a batch of `batch`."""
    seeds = tf.constant(np.arange(batch) * 5 + 3, tf.int64)
    condition = None
    if model.data_spec.conditional:
        condition = tf.constant(np.arange(batch) % model.data_spec.num_classes, tf.int32)
    return seeds, condition


def outputs(model, name, batch=3):
    """Every contract method's output on fixed inputs, as numpy: what a copy must match."""
    seeds, condition = rows(model, batch)
    result = {"sample": model.sample(seeds, tf.ones([batch]), condition).numpy()}
    x, _ = zoo.example_batch(name, batch_size=batch)
    if model.log_prob_kind.has_log_prob:
        result["log_prob"] = model.log_prob(x, condition).numpy()
    if model.has_latent and not model.has_encoder:
        result["decode"] = model.decode(zoo.example_codes(model, batch), condition).numpy()
    elif model.has_latent:
        encode_seed = seeds if model.stochastic_encoder else None
        result["encode"] = model.encode(x, condition, seed=encode_seed).numpy()
        result["decode"] = model.decode(result["encode"], condition).numpy()
    return result


def test_every_registered_class_has_a_zoo_entry():
    covered = {class_name for class_name, _ in zoo.ZOO.values()}
    missing = sorted(set(registered_models()) - covered)
    assert not missing, f"registered model classes without an entry in tests/zoo.py: {missing}"
    # Test models stay out of the production registry (configs name them by path).
    toys = {class_name.partition(":")[2] for class_name, _ in zoo.ZOO.values() if ":" in class_name}
    assert toys and not toys & set(registered_models())


# Batches of 3 and 1 by default but for the flows' batch of 1 (their one-row samples are
# test_same_seed_same_sample_in_any_batch's), which joins the rest under -m slow.
@pytest.mark.parametrize("name, batch", [
    pytest.param(name, batch, marks=[pytest.mark.slow] * (name not in zoo.CONTRACT_DEFAULT
                                                          or (batch == 1 and name in zoo.TINY_FLOWS)))
    for name in NAMES for batch in (1, 3)])
def test_shapes_and_dtypes(name, batch):
    model = cached(name)
    spec = model.data_spec
    result = outputs(model, name, batch)
    assert result["sample"].shape == (batch, *spec.event_shape) and result["sample"].dtype == np.float32
    if model.log_prob_kind.has_log_prob:
        assert result["log_prob"].shape == (batch,) and result["log_prob"].dtype == np.float32
    if model.has_latent:
        assert model.has_encoder == ("encode" in result)
        assert result.get("encode", np.zeros((batch, *model.latent_shape))).shape == (batch, *model.latent_shape)
        assert result["decode"].shape == (batch, *spec.event_shape)
    for key, value in result.items():
        assert np.all(np.isfinite(value)), key


@pytest.mark.parametrize("name", DEFAULT_ENTRIES)
def test_same_seed_same_sample_in_any_batch(name):
    model = cached(name)
    seeds, condition = rows(model, 3)
    samples = model.sample(seeds, tf.ones([3]), condition).numpy()
    alone = model.sample(seeds[1:2], tf.ones([1]), None if condition is None else condition[1:2]).numpy()
    np.testing.assert_allclose(alone[0], samples[1], atol=1e-5)
    assert not np.allclose(samples[0], samples[2])
    if model.stochastic_encoder:
        x, _ = zoo.example_batch(name, batch_size=3)
        codes = model.encode(x, condition, seed=seeds).numpy()
        code = model.encode(x[1:2], None if condition is None else condition[1:2], seed=seeds[1:2]).numpy()
        np.testing.assert_allclose(code[0], codes[1], atol=1e-5)


@pytest.mark.parametrize("name", slow_unless(lambda n: n in zoo.CONTRACT_DEFAULT and (
    not n.endswith("_image_conditional") or n.startswith("toy")), NAMES))
def test_one_fit_step_updates_weights_and_reports_finite_losses(name):
    model = zoo.build(name)
    x, condition = zoo.example_batch(name, batch_size=8)
    before = [w.copy() for w in model.get_weights()]
    # Eager: tracing the graph of every zoo model would dominate the test run; traced
    # training is covered by tests/training.
    model.compile({name: keras.optimizers.Adam(1e-2) for name in model.optimizer_names}, run_eagerly=True)
    data = tf.data.Dataset.from_tensor_slices(x if condition is None else (x, condition)).batch(8)
    history = model.fit(data, epochs=1, verbose=0).history
    for loss in model.reported_losses:
        assert np.isfinite(history[loss][0]), loss
    assert any(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


# The image DDPM's (11 s) is under -m slow: ddpm_vector keeps the family here.
@pytest.mark.parametrize("name", slow_unless(lambda n: n in zoo.CONTRACT_DEFAULT and n != "ddpm_image_conditional",
                                             NAMES))
def test_config_json_and_checkpoint_round_trip_give_the_same_outputs(name, tmp_path):
    """A model rebuilt from its config after a JSON round trip (the same config), its
    weights restored from a checkpoint, answers exactly as the original."""
    model = cached(name)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    restored = perturb_weights(rebuilt(name), seed=5)
    tf.train.Checkpoint(model=restored).read(path).assert_consumed()
    expected = outputs(model, name)
    for key, value in outputs(restored, name).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


@pytest.fixture(scope="module")
def exported_path(tmp_path_factory):
    """name -> version dir of each representative entry's export, made once."""
    root = tmp_path_factory.mktemp("contract_exports")
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = export_model(cached(name), str(root / name))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def exported(exported_path):
    """name -> (version dir, conformance report) of each representative entry, made once."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = (exported_path(name), check_export(exported_path(name)))
        return cache[name]

    return get




@pytest.mark.parametrize("name", slow_unless(lambda n: n not in zoo.CONFORMANCE_SLOW, zoo.REPRESENTATIVE))
def test_export_conforms_and_answers_like_the_model(exported, name):
    model = cached(name)
    path, report = exported(name)
    assert report.ok, report.table()
    loaded = tf.saved_model.load(path)
    checks = {(c.stage, c.name) for c in report.checks}
    # Every signature ran in both loaders, the defaults were proven, the warmup replayed.
    for stage in ("load", "session"):
        for signature in [*loaded.signatures, "sample (defaults)"]:
            assert (stage, signature) in checks, (stage, signature)
    assert {("load", "core TF ops only"), ("load", "process imported only TF"),
            ("session", "warmup replay"), ("cli", "saved_model_cli run sample")} <= checks
    seeds, condition = rows(model, 3)
    extra = {} if condition is None else {"condition": condition}
    defaulted = {k: v for k, v in signature_inputs(model, loaded).items() if k not in ("seed", "temperature", "condition")}
    served = loaded.signatures["sample"](seed=seeds, temperature=tf.ones([3]), **extra, **defaulted)
    np.testing.assert_allclose(served["samples"].numpy(), outputs(model, name)["sample"], rtol=1e-5, atol=1e-5)
    if model.log_prob_kind.has_log_prob:
        # Samples round-trip into log_prob, finite, as the model computes it.
        log_prob = loaded.signatures["log_prob"](x=served["samples"], **extra)["log_prob"].numpy()
        np.testing.assert_allclose(log_prob, model.log_prob(served["samples"], condition).numpy(), rtol=1e-4, atol=1e-4)
        assert np.all(np.isfinite(log_prob))
    else:
        assert "log_prob" not in loaded.signatures
    if model.has_latent and not model.has_encoder:
        # A decoder without an encoder (a GAN): decode of the seeds' codes is the sample.
        assert not {"encode", "reconstruct"} & set(loaded.signatures)
        codes = tf.constant(zoo.example_codes(model, 3, seeds.numpy()))
        decoded = loaded.signatures["decode"](z=codes, **extra)["x"].numpy()
        np.testing.assert_allclose(decoded, served["samples"].numpy(), rtol=1e-5, atol=1e-5)
    elif model.has_latent:
        # encode returns the model's code (and its posterior's parameters, for a stochastic
        # encoder); reconstruct is decode of that code.
        if model.stochastic_encoder:
            extra["seed"] = seeds
        encoded = loaded.signatures["encode"](x=served["samples"], **extra)
        np.testing.assert_allclose(encoded["z"].numpy(), model.encode(
            served["samples"], condition, seed=extra.get("seed")).numpy(), rtol=1e-4, atol=1e-4)
        if model.stochastic_encoder:
            for key, value in zip(("mean", "scale"), model.posterior(served["samples"], condition)):
                np.testing.assert_allclose(encoded[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
        else:
            assert set(encoded) == {"z"}
        reconstruction = loaded.signatures["reconstruct"](x=served["samples"], **extra)["x"].numpy()
        np.testing.assert_allclose(reconstruction, model.decode(encoded["z"], condition).numpy(),
                                   rtol=1e-4, atol=1e-4)


# === Export, restore, one fine-tune step, re-export (tfgen.training.init_from) ===
def signature_inputs(model, loaded, batch=3):
    """The `sample` inputs of `rows(model, batch)`, with the defaulted ones the export has."""
    seeds, condition = rows(model, batch)
    inputs = {"seed": seeds, "temperature": tf.ones([batch])}
    if condition is not None:
        inputs["condition"] = condition
    specs = loaded.signatures["sample"].structured_input_signature[1]
    if "length" in specs:
        inputs["length"] = tf.zeros([batch], tf.int32)  # audio: the example length
    for key, default in getattr(model, "sample_inputs", {}).items():  # iterative samplers: the defaults
        inputs[key] = tf.fill([batch], tf.cast(default, specs[key].dtype))
    return inputs


def restored_from(path, name):
    """A model of `name`'s class and config with other weights, then the export's read in."""
    model = perturb_weights(rebuilt(name), seed=7)
    restore_weights(model, path)
    return model


#: The families whose export-restore-fine-tune-re-export runs by default (pPCA, a GAN, a
#: latent-variable model, each tiny; flows are fine-tuned by tests/training/test_init_from.py);
#: every representative runs under -m slow.
FINE_TUNED_BY_DEFAULT = ("ppca_image", "toy_adversarial", "toy_latent_gaussian")


def one_step_with_a_part_frozen(model, name):
    """One eager fit step with the model's last declared freezable part (if any) frozen;
    checks that the frozen part kept its values and the rest moved."""
    part = next((p for p in reversed(model.freezable_parts) if model.part_variables(p)), None)
    model.freeze([part] if part else [])
    frozen = {v.ref() for v in (model.part_variables(part) if part else [])}
    before = {v.ref(): v.numpy() for v in model.trainable_variables}
    model.compile({n: keras.optimizers.Adam(1e-2) for n in model.optimizer_names}, run_eagerly=True)
    x, condition = zoo.example_batch(name, batch_size=8)
    model.fit(tf.data.Dataset.from_tensor_slices(x if condition is None else (x, condition)).batch(8), verbose=0)
    moved = {v.ref() for v in model.trainable_variables if not np.array_equal(v.numpy(), before[v.ref()])}
    assert moved and not moved & frozen, part


@pytest.mark.parametrize("name", slow_unless(lambda n: n in FINE_TUNED_BY_DEFAULT, zoo.REPRESENTATIVE))
def test_export_restore_one_fine_tune_step_re_export(exported_path, name, tmp_path):
    path = exported_path(name)
    restored = restored_from(path, name)
    for original, copy in zip(exported_variables(cached(name)), exported_variables(restored), strict=True):
        np.testing.assert_array_equal(copy.numpy(), original.numpy(), err_msg=original.name)
    # Before any step, the restored model's own signatures (the functions an export of
    # it would hold) answer as the export's, bit for bit, on the same rows.
    loaded = tf.saved_model.load(path)
    inputs = signature_inputs(restored, loaded)
    module = SignatureModule(restored)
    parent_samples = loaded.signatures["sample"](**inputs)
    ours = module.call("sample", {k: v.numpy() for k, v in inputs.items()})
    for key, value in parent_samples.items():
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=f"sample {key}")
    extra = {"condition": inputs["condition"]} if "condition" in inputs else {}
    if restored.log_prob_kind.has_log_prob:
        expected = loaded.signatures["log_prob"](x=parent_samples["samples"], **extra)
        ours = module.call("log_prob", {"x": parent_samples["samples"].numpy(), **{k: v.numpy() for k, v in extra.items()}})
        for key, value in expected.items():
            # To float rounding: Grappler may sum the same terms in another order in the
            # export's compacted graph (1 ulp in 1 of 3 rows on an AVX-512 machine).
            np.testing.assert_allclose(ours[key], value.numpy(), rtol=1e-6, atol=0, err_msg=f"log_prob {key}")
    # One fine-tune step, then the next version of the same base path answers as the
    # fine-tuned model, no longer as its parent.
    one_step_with_a_part_frozen(restored, name)
    base = tmp_path / "base"
    shutil.copytree(path, base / "1")
    version = export_model(restored, str(base), metadata={"lineage": {"parent": {"version": 1}}})
    assert version == str(base / "2")
    child = tf.saved_model.load(version)
    samples = child.signatures["sample"](**inputs)["samples"].numpy()
    fine_tuned = restored.sample(inputs["seed"], inputs["temperature"], extra.get("condition")).numpy()
    np.testing.assert_allclose(samples, fine_tuned, rtol=1e-5, atol=1e-5)
    if restored.log_prob_kind.has_log_prob:
        # The likelihood moves with any weight; a step may leave every quantized sample as it was.
        moved = child.signatures["log_prob"](x=parent_samples["samples"], **extra)["log_prob"].numpy()
        assert not np.allclose(moved, expected["log_prob"].numpy(), rtol=1e-5, atol=1e-5)
    else:
        assert not np.allclose(samples, parent_samples["samples"].numpy(), rtol=1e-5, atol=1e-5)
    with open(os.path.join(version, "assets.extra", "tfgen.json")) as f:
        assert json.load(f)["lineage"] == {"parent": {"version": 1}}
