"""TensorBoard event files written with core TensorFlow only.

`tf.summary.scalar`/`tf.summary.image` (and so Keras' TensorBoard callback) need the
`tensorboard` package, which tfgen does not depend on. `tf.summary.write` with the
scalar/image plugin metadata writes the very same records, so `tensorboard --logdir
RUN_DIR/logs` (installed wherever the user views logs) shows them as usual.
"""

from tensorflow.core.framework import summary_pb2

from tfgen.backend import tf


def _metadata(plugin_name, data_class):
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name),
        data_class=data_class,
    ).SerializeToString()


_SCALAR = _metadata("scalars", summary_pb2.DATA_CLASS_SCALAR)
_IMAGE = _metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def scalar(name, value, step):
    """Writes one scalar to the default summary writer."""
    return tf.summary.write(name, tf.cast(value, tf.float32), step=step, metadata=_SCALAR)


def image(name, images, step):
    """Writes uint8 images `[N, H, W, C]` (C in 1, 3, 4) to the default summary writer."""
    images = tf.convert_to_tensor(images, tf.uint8)
    height, width = images.shape[1], images.shape[2]
    pngs = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
    tensor = tf.concat([tf.constant([str(width), str(height)]), pngs], axis=0)
    return tf.summary.write(name, tensor, step=step, metadata=_IMAGE)


def read_event_tags(log_dir):
    """{tag: [(step, value-or-bytes), ...]} of the event files under `log_dir` (for tests)."""
    from tensorflow.core.util import event_pb2

    tags = {}
    for path in sorted(tf.io.gfile.glob(f"{log_dir}/events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)))
    return tags
