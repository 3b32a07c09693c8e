"""`tfgen.errors.graph_error_message` on messages TensorFlow really produces: an in-graph
check and a runtime error, each without the node names that differ per export."""

import numpy as np
import pytest

from tfgen.backend import tf
from tfgen.errors import graph_error_message


def _message(fn, *args):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        tf.function(fn, autograph=False)(*args)
    return error.value.message


def test_a_failed_check_reads_as_its_message_and_value():
    def check(x):
        with tf.control_dependencies([tf.debugging.assert_less(x, 10, message="condition must be in 0 .. 9")]):
            return tf.identity(x)

    message = _message(check, tf.constant(12))
    assert "node" in message  # what the user would have seen
    assert graph_error_message(message) == "condition must be in 0 .. 9 (got 12)"


def test_a_runtime_error_keeps_its_first_line_that_says_what():
    message = _message(lambda x: tf.debugging.check_numerics(x, "x is not finite"),
                       tf.constant([1.0, np.nan]))
    text = graph_error_message(message, limit=40)
    assert text.startswith("x is not finite") and len(text) <= 40 and "node" not in text


def test_a_check_whose_message_holds_brackets_keeps_all_of_it():
    def check(eta):
        with tf.control_dependencies([tf.debugging.assert_less_equal(eta, 1.0, message="eta: must be in [0, 1]")]):
            return tf.identity(eta)

    assert graph_error_message(_message(check, tf.constant(1.5))) == "eta: must be in [0, 1] (got 1.5)"


def test_quotes_in_a_check_s_message_read_as_written():
    def check(steps):
        with tf.control_dependencies([tf.debugging.assert_less_equal(steps, 200, message="steps: the model's cap")]):
            return tf.identity(steps)

    assert graph_error_message(_message(check, tf.constant(500))) == "steps: the model's cap (got 500)"


def test_a_setting_broadcast_to_every_row_is_named_once():
    def check(rows):
        with tf.control_dependencies([tf.debugging.assert_less_equal(rows, 200, message="steps: the model's cap")]):
            return tf.identity(rows)

    assert graph_error_message(_message(check, tf.fill([5], 500))) == "steps: the model's cap (got 500)"
    # Rows that differ keep every value TensorFlow printed.
    assert graph_error_message(_message(check, tf.constant([1, 500]))) == "steps: the model's cap (got 1 500)"
