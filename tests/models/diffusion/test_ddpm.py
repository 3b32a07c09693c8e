"""DDPM: schedules, the DDIM/ancestral sampler's inputs, guidance, the variational bound."""

import numpy as np
import pytest

import zoo
from tfgen import distributions
from tfgen.backend import tf
from tfgen.errors import UserError
from tfgen.models.diffusion import schedules


def test_schedules_match_their_definitions():
    linear = schedules.betas("linear", 1000)
    assert linear[0] == pytest.approx(1e-4) and linear[-1] == pytest.approx(0.02)
    np.testing.assert_allclose(schedules.betas("linear", 500)[[0, -1]], [2e-4, 0.04])
    cosine = schedules.betas("cosine", 100)
    alpha_bar = np.cumprod(1 - cosine)
    f = np.cos((np.arange(101) / 100 + 0.008) / 1.008 * np.pi / 2) ** 2
    np.testing.assert_allclose(alpha_bar[:-1], (f[1:] / f[0])[:-1], rtol=1e-9)
    with pytest.raises(UserError, match="unknown noise schedule 'quadratic'"):
        schedules.betas("quadratic", 10)


def test_discretized_normal_is_a_distribution_on_the_levels():
    loc = tf.constant([[-3.0, 0.2, 7.9, 20.0]])
    dist = distributions.discretized_normal(loc, tf.fill(loc.shape, 0.7), 8, event_ndims=1)
    per_level = distributions.level_log_probabilities(dist, 8).numpy()
    np.testing.assert_allclose(np.exp(per_level).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(per_level, -1)[0], [0, 0, 7, 7])


@pytest.fixture(scope="module")
def conditional():
    return zoo.cached("ddpm_image_conditional")


def test_rows_with_different_steps_eta_and_guidance_are_independent(conditional):
    seeds = tf.constant([3, 4, 5], tf.int64)
    condition = tf.constant([0, 1, 2])
    steps, eta, guidance = tf.constant([50, 7, 1]), tf.constant([1.0, 0.3, 0.0]), tf.constant([1.0, 3.0, 0.5])
    batch = conditional.sample(seeds, 1.0, condition, steps=steps, eta=eta, guidance_scale=guidance).numpy()
    for i in range(3):
        alone = conditional.sample(seeds[i:i + 1], 1.0, condition[i:i + 1], steps=steps[i:i + 1], eta=eta[i:i + 1],
                                   guidance_scale=guidance[i:i + 1]).numpy()
        np.testing.assert_allclose(alone[0], batch[i], atol=1e-5)
    again = conditional.sample(seeds, 1.0, condition, steps=steps, eta=eta, guidance_scale=guidance).numpy()
    np.testing.assert_array_equal(again, batch)


def test_guidance_mixes_conditional_and_null_class_noise_predictions(conditional):
    network = conditional._sampling_denoiser
    x = tf.repeat(tf.random.stateless_normal([1, 4, 4, 1], seed=[5, 6]), 3, 0)
    t = tf.fill([3], 10)
    condition = tf.constant([0, 1, 2])

    def guided(w):
        return conditional._predict_noise(network, x, t, condition, tf.fill([3], float(w))).numpy()

    unconditional = guided(0.0)  # the null class's prediction, whatever the class
    np.testing.assert_allclose(unconditional[0], unconditional[1], atol=1e-6)
    np.testing.assert_allclose(unconditional[0], network(x, tf.cast(t, tf.float32), tf.fill([3], 3)).numpy()[0],
                               atol=1e-6)
    conditional_only = guided(1.0)
    assert not np.allclose(conditional_only[0], conditional_only[1])
    np.testing.assert_allclose(guided(3.0), unconditional + 3.0 * (conditional_only - unconditional), atol=1e-5)


@pytest.mark.parametrize("inputs,message", [
    ({"steps": 0}, "steps: must be >= 1"), ({"steps": 51}, "steps: at most 50"),
    ({"eta": -0.1}, "eta: must be in"), ({"eta": 1.5}, "eta: must be in"),
    ({"guidance_scale": np.inf}, "guidance_scale: must be finite"),
])
def test_bad_sampler_inputs_are_invalid_argument_naming_the_input(conditional, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        conditional.sample(tf.constant([1, 2], tf.int64), 1.0, tf.constant([0, 1]), **inputs)


def test_training_lowers_the_simple_loss_and_the_bound():
    model = zoo.build("ddpm_vector")
    rng = np.random.default_rng(0)
    x = (rng.normal(size=[256, 2]) * 0.1 + [1.0, -1.0]).astype(np.float32)
    bound_before = model.log_prob(x[:64]).numpy().mean()
    model.compile(optimizer="adam")
    history = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=15, verbose=0).history["loss"]
    assert history[-1] < 0.7 * history[0]
    assert model.log_prob(x[:64]).numpy().mean() > bound_before + 1.0


@pytest.fixture(scope="module")
def seven_terms(conditional):
    """The conditional zoo DDPM (T = 50) with classify_terms = 7: stride 7, t = 5, 12, ..."""
    return _with_classify_terms(conditional, 7)


def _with_classify_terms(model, terms, **config):
    """`model` (same config and weights) with `classify_terms` = `terms`."""
    copy = type(model).from_config({**model.get_config(), "classify_terms": terms, **config})
    for new, old in zip(copy.variables, model.variables):
        new.assign(old)
    return copy


def test_the_bound_is_the_same_sum_however_many_timesteps_share_a_pass(seven_terms):
    """Chunks of 64 rows x timesteps per pass (3 rows: 21, 21 and 7 of the 49 KL terms)
    and of one timestep (a pass per t) give the bound and the estimate to float32
    rounding, for 3 rows and none."""
    x, condition = zoo.example_batch("ddpm_image_conditional", batch_size=3)
    one_per_pass = _with_classify_terms(seven_terms, 7, bound_rows_per_pass=1)
    assert one_per_pass.get_config()["bound_rows_per_pass"] == 1
    for rows in (3, 0):
        inputs = (x[:rows], condition[:rows])
        expected = seven_terms.log_prob(*inputs).numpy(), seven_terms.classify_log_prob(*inputs).numpy()
        assert expected[0].shape == (rows,)
        np.testing.assert_allclose(one_per_pass.log_prob(*inputs).numpy(), expected[0], rtol=2e-6)
        np.testing.assert_allclose(one_per_pass.classify_log_prob(*inputs).numpy(), expected[1], rtol=2e-6)
    with pytest.raises(UserError, match="bound_rows_per_pass must be an integer >= 1, got 0"):
        _with_classify_terms(seven_terms, 7, bound_rows_per_pass=0)


def test_bound_and_classify_estimate_are_deterministic_row_independent_and_the_estimate_a_subset_of_terms(
        conditional, seven_terms):
    x, condition = zoo.example_batch("ddpm_image_conditional", batch_size=3)
    bound = conditional.log_prob(x, condition).numpy()
    np.testing.assert_array_equal(conditional.log_prob(x, condition).numpy(), bound)
    # A lower bound on a probability of levels: below 0 nats, and finite.
    assert np.all(np.isfinite(bound)) and np.all(bound < 0)
    # K >= T - 1 (the default 50 at the zoo's T = 50): classify runs the bound itself.
    assert conditional.classify_estimate is None
    np.testing.assert_array_equal(conditional.classify_log_prob(x, condition).numpy(), bound)
    assert seven_terms.get_config()["classify_terms"] == 7
    assert (seven_terms.classify_estimate["terms"], seven_terms.classify_estimate["network_passes"]) == (7, 8)
    assert "t = 5, 12, ... of 1 .. 50" in seven_terms.classify_estimate["method"]
    np.testing.assert_array_equal(seven_terms.log_prob(x, condition).numpy(), bound)  # log_prob: the full bound
    estimate = seven_terms.classify_log_prob(x, condition).numpy()
    assert np.all(np.isfinite(estimate)) and not np.allclose(estimate, bound)
    # The bound's function at another stride: row-independent; the same noise for every
    # row, so one row twice gives one value (to float32 rounding: a CPU's kernels may
    # round rows at different batch positions differently).
    np.testing.assert_allclose(seven_terms.classify_log_prob(x[1:2], condition[1:2]).numpy()[0], estimate[1],
                               rtol=1e-5)
    same_row = seven_terms.classify_log_prob(tf.repeat(x[:1], 2, 0), tf.constant([1, 1])).numpy()
    np.testing.assert_allclose(same_row[0], same_row[1], rtol=1e-6)
    for log_prob in (conditional.log_prob, seven_terms.classify_log_prob):
        with pytest.raises(tf.errors.InvalidArgumentError, match="x must be <= levels-1"):
            log_prob(x + 17.0, condition)
    with pytest.raises(UserError, match="classify_terms must be an integer >= 1, got 0"):
        _with_classify_terms(conditional, 0)


def test_exported_classify_is_bayes_rule_over_the_estimate_calling_the_one_bound_function(conditional, seven_terms):
    from tfgen.export.saved_model import metadata_document
    from tfgen.export.signatures import SignatureModule
    from tfgen.scoring.classify import bayes

    module = SignatureModule(seven_terms)
    x, _ = zoo.example_batch("ddpm_image_conditional", batch_size=2)
    classes = seven_terms.data_spec.num_classes
    examples = []
    for row in x:
        example = tf.train.Example()
        example.features.feature["x"].float_list.value.extend(row.reshape(-1))
        examples.append(example.SerializeToString())
    scores = module.call("classify", {"inputs": np.array(examples, object)})["scores"]
    estimate = seven_terms.classify_log_prob(np.repeat(x, classes, 0), np.tile(np.arange(classes, dtype=np.int32), 2))
    np.testing.assert_allclose(scores, np.exp(bayes(estimate.numpy().reshape(2, classes), [1 / classes] * classes)[0]),
                               rtol=1e-5, atol=1e-6)

    # classify and log_prob call one bound function (its loop and the network once in the
    # export), at different strides.
    def bound_functions(name):
        library = module._signatures[name].get_concrete_function().graph.as_graph_def().library
        return {f.signature.name for f in library.function if "variational_bound" in f.signature.name}

    assert len(bound_functions("classify")) == 1 and bound_functions("classify") == bound_functions("log_prob")
    assert metadata_document(seven_terms, {})["classify_estimate"] == seven_terms.classify_estimate
    assert metadata_document(conditional, {})["classify_estimate"] is None
