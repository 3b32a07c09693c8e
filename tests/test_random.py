"""tfgen.random: a row's draw is TensorFlow's stateless op keyed by (its seed, the salt),
whatever the batch, the length known only when the graph runs, or a salt per row."""

import numpy as np
import pytest

from tfgen.backend import tf
from tfgen.random import per_row_normal, per_row_uniform

SEEDS = np.array([0, 1, 7, -1, -5, 2**40 + 3, -(2**62), 2**63 - 1, 123456789], np.int64)


def _row_by_row(op, shape, salt, seeds=SEEDS):
    return np.stack([op(shape, seed=tf.constant([s, salt], tf.int64)).numpy() for s in seeds])


@pytest.mark.parametrize("shape", [[], [3], [49, 1, 3]])
@pytest.mark.parametrize("salt", [0, 3])
def test_rows_are_the_stateless_ops_bit_for_bit(shape, salt):
    for draw, op in ((per_row_uniform, tf.random.stateless_uniform), (per_row_normal, tf.random.stateless_normal)):
        got = draw(tf.constant(SEEDS), shape, salt=salt).numpy()
        np.testing.assert_array_equal(got, _row_by_row(op, shape, salt), err_msg=op.__name__)


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


def test_a_salt_per_row_keys_each_row_by_its_own_pair():
    salts = np.arange(len(SEEDS), dtype=np.int64) * 3 - 4
    got = per_row_normal(tf.constant(SEEDS), [6], salt=tf.constant(salts)).numpy()
    expected = np.stack([tf.random.stateless_normal([6], seed=tf.constant([s, t], tf.int64)).numpy()
                         for s, t in zip(SEEDS, salts)])
    np.testing.assert_array_equal(got, expected)
    step = tf.constant(7, tf.int64)  # a scalar tensor, as a sampler's loop step
    np.testing.assert_array_equal(per_row_uniform(tf.constant(SEEDS), [6], salt=step).numpy(),
                                  _row_by_row(tf.random.stateless_uniform, [6], 7))
