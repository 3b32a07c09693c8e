"""tfgen.random: per-row draws equal TensorFlow's stateless ops row by row (the draws the
shipped exports make in a tf.map_fn), in one vectorized pass."""

import numpy as np
import pytest

from tfgen.backend import tf
from tfgen.random import per_row_normal, per_row_uniform

SEEDS = np.array([0, 1, 7, -1, -5, 2**40 + 3, -(2**62), 2**63 - 1, 123456789], np.int64)
SHAPES = [[], [1], [3], [5], [2, 3], [49, 1, 3], [257]]


def _row_by_row(op, shape, salt, seeds=SEEDS):
    return np.stack([op(shape, seed=tf.constant([s, salt], tf.int64)).numpy() for s in seeds])


@pytest.mark.parametrize("salt", [0, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_rows_are_stateless_uniform_bit_for_bit(shape, salt):
    got = per_row_uniform(tf.constant(SEEDS), shape, salt=salt).numpy()
    np.testing.assert_array_equal(got, _row_by_row(tf.random.stateless_uniform, shape, salt))


@pytest.mark.parametrize("salt", [0, 1, 2])
def test_normal_rows_are_stateless_normal_to_two_ulp(salt):
    shape = [4, 64]
    got = per_row_normal(tf.constant(SEEDS), shape, salt=salt).numpy()
    expected = _row_by_row(tf.random.stateless_normal, shape, salt)
    assert got.shape == expected.shape == (len(SEEDS), *shape)
    # TensorFlow's kernel calls the float32 libm log/sin/cos; here they are rounded from
    # float64: equal but for rare differences in the last bits.
    np.testing.assert_array_max_ulp(got, expected, maxulp=2)
    assert np.mean(got == expected) > 0.97


@pytest.mark.parametrize("shape", [[], [3], [5, 2]])
def test_odd_and_empty_event_shapes_match_the_op(shape):
    got = per_row_normal(tf.constant(SEEDS), shape).numpy()
    np.testing.assert_array_max_ulp(got, _row_by_row(tf.random.stateless_normal, shape, 0), maxulp=2)


def test_a_row_depends_only_on_its_seed_whatever_the_batch():
    alone = per_row_normal(tf.constant([42], tf.int64), [16]).numpy()
    for batch in ([42, 0, 1], [5, 6, 42, 7], [42] * 3):
        rows = per_row_normal(tf.constant(batch, tf.int64), [16]).numpy()
        for i in np.flatnonzero(np.array(batch) == 42):
            np.testing.assert_array_equal(rows[i], alone[0])
    others = per_row_normal(tf.constant([41, 43], tf.int64), [16]).numpy()
    assert not np.any(others == alone)


def test_a_length_known_when_the_graph_runs_draws_a_prefix_of_longer_draws():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int32)])
    def draw(seed, length):
        return per_row_uniform(seed, [length, 3], salt=1)

    short, long = draw(tf.constant(SEEDS), 5).numpy(), draw(tf.constant(SEEDS), 11).numpy()
    assert short.shape == (len(SEEDS), 5, 3) and long.shape == (len(SEEDS), 11, 3)
    np.testing.assert_array_equal(long[:, :5], short)
    np.testing.assert_array_equal(long, _row_by_row(tf.random.stateless_uniform, [11, 3], 1))


def test_the_draw_is_one_pass_over_the_batch_not_a_loop():
    graph = tf.function(lambda seed: (per_row_normal(seed, [8]), per_row_uniform(seed, [8]))).get_concrete_function(
        tf.TensorSpec([None], tf.int64)).graph
    ops = {op.type for op in graph.get_operations()}
    assert not ops & {"While", "StatelessWhile", "TensorListReserve"}, ops
    assert not any(t.startswith("StatelessRandom") for t in ops), ops


def test_uniforms_are_in_the_unit_interval_and_normals_standard():
    seeds = tf.range(2000, dtype=tf.int64)
    u = per_row_uniform(seeds, [50]).numpy()
    z = per_row_normal(seeds, [50]).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01


def test_other_dtypes_are_refused_by_name():
    with pytest.raises(ValueError, match="float64"):
        per_row_normal(tf.constant([1], tf.int64), [2], dtype=tf.float64)


def test_a_salt_per_row_keys_each_row_by_its_own_pair():
    salts = np.arange(len(SEEDS), dtype=np.int64) * 3 - 4
    got = per_row_normal(tf.constant(SEEDS), [6], salt=tf.constant(salts)).numpy()
    expected = np.stack([tf.random.stateless_normal([6], seed=tf.constant([s, t], tf.int64)).numpy()
                         for s, t in zip(SEEDS, salts)])
    np.testing.assert_array_max_ulp(got, expected, maxulp=2)
    step = tf.constant(7, tf.int64)  # a scalar tensor, as a sampler's loop step
    np.testing.assert_array_equal(per_row_uniform(tf.constant(SEEDS), [6], salt=step).numpy(),
                                  _row_by_row(tf.random.stateless_uniform, [6], 7))
