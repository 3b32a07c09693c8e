"""The latent-space tools (tfgen.latent.space) on real exports, in this process and
through a real server: the same numbers either way."""

import numpy as np
import pytest
from latent_exports import DECODE_ONLY_LATENT, write_decode_only

from tfgen.errors import UserError
from tfgen.latent import LatentSpace, LocalCaller, ServerCaller, interpolate, prior_codes


def test_linear_interpolation_runs_evenly_from_a_to_b():
    a, b = np.array([0.0, 2.0]), np.array([4.0, -2.0])
    path = interpolate(a, b, 5, "linear")
    np.testing.assert_allclose(path, [[0, 2], [1, 1], [2, 0], [3, -1], [4, -2]], atol=1e-6)


def test_slerp_follows_the_arc_and_keeps_the_norm_of_equal_norm_codes():
    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    path = interpolate(a, b, 3, "slerp")
    np.testing.assert_allclose(path[[0, 2]], [a, b], atol=1e-6)
    np.testing.assert_allclose(path[1], [3 / np.sqrt(2), 3 / np.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(interpolate(a, b, 9, "slerp"), axis=1), 3.0, atol=1e-5)
    # Parallel codes have no arc: slerp is the straight line then.
    np.testing.assert_allclose(interpolate(a, 2 * a, 3, "slerp"), interpolate(a, 2 * a, 3, "linear"))


def test_bad_interpolation_arguments_are_user_errors():
    with pytest.raises(UserError, match="at least 2 steps"):
        interpolate(np.zeros(2), np.ones(2), 1)
    with pytest.raises(UserError, match="unknown interpolation 'cubic'"):
        interpolate(np.zeros(2), np.ones(2), 4, "cubic")


def _local(exports, name):
    return LatentSpace(LocalCaller(exports[name][1]))


def test_a_flow_reconstructs_its_inputs_and_its_seed_path_ends_at_its_samples(exports):
    from tfgen.backend import tf

    model, _ = exports["flow"]
    space = _local(exports, "flow")
    assert space.conditional and not space.stochastic and space.has_reconstruct
    x = np.random.default_rng(0).integers(0, 17, size=(5, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(space.reconstruct(x, condition=[0, 1, 2, 0, 1]), x, atol=1e-4)
    # z of seed s is the standard normal draw a flow samples from.
    path = space.interpolate_seeds(7, 9, steps=4, method="slerp", condition=2)
    samples = model.sample(tf.constant([7, 9], tf.int64), tf.ones([2]), tf.constant([2, 2], tf.int32)).numpy()
    np.testing.assert_allclose(path[[0, -1]], samples, atol=1e-4)
    assert not np.array_equal(path[1], path[0]) and not np.array_equal(path[1], path[-1])


def test_a_vae_codes_inputs_by_the_posterior_mean_or_a_seeded_draw(exports):
    model, _ = exports["vae"]
    space = _local(exports, "vae")
    assert space.stochastic and not space.conditional and space.latent_shape == (1,)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
    mean, _ = model.posterior(x)
    np.testing.assert_allclose(space.encode(x), mean.numpy(), rtol=1e-5, atol=1e-6)
    draws = space.encode(x, seed=[3, 4, 5, 6], code="draw")
    assert not np.allclose(draws, mean.numpy())
    np.testing.assert_array_equal(space.encode(x, seed=[3, 4, 5, 6], code="draw"), draws)
    np.testing.assert_allclose(space.reconstruct(x, seed=[3, 4, 5, 6]), model.decode(draws).numpy(), atol=1e-5)
    np.testing.assert_allclose(space.reconstruct(x, code="mean"), model.decode(mean).numpy(), atol=1e-5)
    # Interpolating between two inputs decodes the path between their posterior means.
    strip = space.interpolate_inputs(x[0], x[3], steps=3)
    np.testing.assert_allclose(strip, model.decode(interpolate(mean[0], mean[3], 3)).numpy(), atol=1e-5)


def test_an_attribute_vector_is_the_difference_of_group_means_and_shifts_codes_by_strength(exports):
    model, _ = exports["vae"]
    space = _local(exports, "vae")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    has = x[:, 0] > 0
    codes = space.encode(x)
    vector = space.attribute_vector(x, has)
    np.testing.assert_allclose(vector, codes[has].mean(0) - codes[~has].mean(0), atol=1e-5)
    grid = space.apply_attribute(x[:2], vector, [-1.0, 0.0, 2.0])
    assert grid.shape == (2, 3, 2)
    for i, strength in enumerate([-1.0, 0.0, 2.0]):
        np.testing.assert_allclose(grid[:, i], model.decode(codes[:2] + strength * vector).numpy(), atol=1e-5)
    with pytest.raises(UserError, match="no example without the attribute"):
        space.attribute_vector(x, np.ones(40, bool))
    with pytest.raises(UserError, match=r"attribute vector of shape \[3\] per row"):
        space.apply_attribute(x[:2], np.zeros(3), [1.0])


def test_bad_inputs_are_one_line_user_errors(exports):
    space = _local(exports, "vae")
    bad = np.zeros((3, 2), np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(UserError, match=r"non-finite values \(NaN or Inf\) in rows \[1\]"):
        space.encode(bad)
    with pytest.raises(UserError, match=r"examples of shape \[3\] per row"):
        space.reconstruct(np.zeros((2, 3)))
    with pytest.raises(UserError, match="unconditional: drop the condition"):
        space.decode(np.zeros((2, 1)), condition=1)
    with pytest.raises(UserError, match="conditional: give a class"):
        _local(exports, "flow").decode(np.zeros((1, 4, 4, 1)))


def test_a_model_without_a_latent_space_is_named(exports):
    with pytest.raises(UserError, match="has no decode signature, so no latent space"):
        _local(exports, "gan")


def test_a_decode_only_model_interpolates_between_seeds_only(exports, tmp_path):
    space = _local(exports, "decode_only")
    assert space.latent_shape == (DECODE_ONLY_LATENT,) and not space.has_encode
    path = space.interpolate_seeds(0, 1, steps=5)
    np.testing.assert_allclose(path, 2 * interpolate(*prior_codes([0, 1], (DECODE_ONLY_LATENT,)), 5) + 1, atol=1e-6)
    with pytest.raises(UserError, match="no encode signature"):
        space.reconstruct(np.zeros((1, DECODE_ONLY_LATENT)))
    # The latent shape decode takes must be the one tfgen.json records.
    with pytest.raises(UserError, match=r"records latent shape \[4\], the decode signature takes \[3\]"):
        LatentSpace(LocalCaller(write_decode_only(str(tmp_path / "1"), recorded_latent_shape=(4,))))


def test_an_export_without_reconstruct_falls_back_to_encode_and_decode(tmp_path):
    """tfgen exports older than the reconstruct signature have encode and decode only."""
    space = LatentSpace(LocalCaller(write_decode_only(str(tmp_path / "1"), encode=True)))
    assert space.has_encode and not space.has_reconstruct
    x = np.random.default_rng(2).normal(size=(3, DECODE_ONLY_LATENT)).astype(np.float32)
    np.testing.assert_allclose(space.encode(x), (x - 1) / 2, rtol=1e-6)
    np.testing.assert_allclose(space.reconstruct(x), x, rtol=1e-6, atol=1e-6)


def test_local_and_served_give_the_same_numbers(exports, server):
    for name, condition in (("vae", None), ("flow", 1)):
        local = _local(exports, name)
        served = LatentSpace(ServerCaller(server.grpc_address, name))
        try:
            assert served.latent_shape == local.latent_shape and served.stochastic == local.stochastic
            assert served.caller.data_spec().kind == local.caller.data_spec().kind
            shape = local.event_shape
            x = np.random.default_rng(3).integers(0, 3, size=(6, *shape)).astype(np.float32)
            for tool in (
                lambda s: s.reconstruct(x, condition, seed=np.arange(6)),
                lambda s: s.interpolate_inputs(x[0], x[1], 5, "slerp", condition),
                lambda s: s.interpolate_seeds(4, 5, 5, "linear", condition),
                lambda s: s.apply_attribute(x[:2], s.attribute_vector(x, np.arange(6) % 2 == 0, condition),
                                            [0.0, 1.5], condition),
            ):
                np.testing.assert_allclose(tool(served), tool(local), rtol=1e-6, atol=1e-6)
        finally:
            served.caller.close()
    with pytest.raises(UserError, match="no decode signature"):
        LatentSpace(ServerCaller(server.grpc_address, "gan"))
