"""User-data loaders on real files written to tmp_path."""

import numpy as np
import pytest
from PIL import Image

from tfgen.backend import tf
from tfgen.data import load_dataset


def _total(dataset):
    return sum(len(split) for split in dataset.splits.values())


def test_npy_discrete_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 4, size=(50, 5, 5, 1))
    np.save(tmp_path / "x.npy", x)
    dataset = load_dataset({"name": "npy", "path": str(tmp_path / "x.npy"), "levels": 4, "test_fraction": 0.2})
    spec = dataset.spec
    assert (spec.event_shape, spec.kind, spec.levels) == ((5, 5, 1), "image", 4)
    assert _total(dataset) == 50 and len(dataset.splits["test"]) == 10
    assert dataset.splits["train"].y is None


def test_npy_continuous_vectors_get_data_range(tmp_path):
    x = np.linspace(-2, 5, 60).reshape(20, 3)
    np.save(tmp_path / "x.npy", x)
    spec = load_dataset({"name": "npy", "path": tmp_path / "x.npy", "event_shape": [3]}).spec
    assert (spec.kind, spec.levels, spec.low, spec.high) == ("vector", None, -2.0, 5.0)


def test_npz_with_labels_is_conditional_and_stratified(tmp_path):
    x = np.random.default_rng(0).normal(size=(100, 4))
    y = np.repeat([0, 1, 2, 3], 25)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    dataset = load_dataset({"name": "npz", "path": str(tmp_path / "d.npz"), "conditional": True})
    assert dataset.spec.num_classes == 4
    assert sorted(np.bincount(dataset.splits["test"].y)) in ([2, 2, 3, 3], [2, 3, 3, 2], [2, 2, 2, 2], [3, 3, 3, 3])


@pytest.mark.parametrize(
    "write, config, error, message",
    [
        (None, {}, FileNotFoundError, "missing.npy: no such file"),
        (lambda p: np.save(p, np.array([["a"], ["b"]], dtype=object), allow_pickle=True), {}, ValueError,
         "object arrays"),
        (lambda p: np.save(p, np.array([["a"], ["b"]])), {}, ValueError, "must be numeric"),
        (lambda p: np.save(p, np.zeros((4, 3))), {"event_shape": [2]}, ValueError,
         r"shape \(3,\), expected event_shape \(2,\)"),
        (lambda p: np.save(p, np.array([[0.0], [np.nan], [np.nan]])), {}, ValueError,
         r"2 NaN/Inf value\(s\), first at x\[1, 0\]"),
        (lambda p: np.save(p, np.array([[0.0], [3.0], [9.0]])), {"levels": 4}, ValueError,
         r"1 value\(s\) outside \[0, 3\]"),
        (lambda p: np.save(p, np.zeros((0, 3))), {}, ValueError, "no examples"),
        (lambda p: p.write_bytes(b"not numpy"), {}, ValueError, "not a readable .npy file"),
    ],
)
def test_npy_errors_name_the_file(tmp_path, write, config, error, message):
    path = tmp_path / "missing.npy"
    if write is not None:
        write(path)
    with pytest.raises(error, match=message) as info:
        load_dataset({"name": "npy", "path": str(path), **config})
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_npz_without_x_lists_the_keys(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"no array 'x'.*\['images'\]"):
        load_dataset({"name": "npz", "path": str(tmp_path / "d.npz")})


def test_conditional_without_labels_is_an_error(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((20, 2)))
    with pytest.raises(ValueError, match="conditional=True needs labels"):
        load_dataset({"name": "npy", "path": str(tmp_path / "x.npy"), "conditional": True})


def _write_images(folder, count, size, colour):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        suffix = ".png" if i % 2 else ".jpg"
        Image.new("RGB", size, colour).save(folder / f"{i}{suffix}")


def test_image_folder_with_class_subfolders(tmp_path):
    _write_images(tmp_path / "cats", 10, (6, 4), (255, 0, 0))
    _write_images(tmp_path / "dogs", 10, (6, 4), (0, 0, 255))
    dataset = load_dataset({"name": "image_folder", "path": str(tmp_path), "conditional": True, "seed": 2})
    assert dataset.spec.event_shape == (4, 6, 3) and dataset.spec.levels == 256
    assert dataset.spec.num_classes == 2 and dataset.class_names == ("cats", "dogs")
    train = dataset.splits["train"]
    # red images are class 0, blue class 1 (JPEG may shift values a little)
    assert np.all((train.x[..., 0].mean(axis=(1, 2)) > 128) == (train.y == 0))


def test_image_folder_flat_greyscale_resized(tmp_path):
    _write_images(tmp_path, 5, (10, 10), (10, 20, 30))
    _write_images(tmp_path / "more", 0, (10, 10), (0, 0, 0))
    Image.new("RGB", (7, 9)).save(tmp_path / "odd.png")
    dataset = load_dataset(
        {"name": "image_folder", "path": str(tmp_path), "image_size": 8, "channels": 1,
         "validation_fraction": 0.0, "test_fraction": 0.2}
    )
    assert dataset.spec.event_shape == (8, 8, 1) and _total(dataset) == 6
    assert set(dataset.splits) == {"train", "test"} and dataset.splits["train"].y is None


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_dataset({"name": "image_folder", "path": str(tmp_path / "nope")})
    with pytest.raises(ValueError, match="no PNG/JPEG images"):
        load_dataset({"name": "image_folder", "path": str(tmp_path)})
    _write_images(tmp_path, 3, (5, 5), (0, 0, 0))
    Image.new("RGB", (6, 5)).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match=r"wide.png: image is 6x5, but 0.jpg is 5x5; set option image_size"):
        load_dataset({"name": "image_folder", "path": str(tmp_path)})
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.png: not a readable image"):
        load_dataset({"name": "image_folder", "path": str(tmp_path), "image_size": [5, 5]})


def _write_tfrecord(path, rows, labels=None, key="x"):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i, row in enumerate(rows):
            row = np.asarray(row).ravel()
            if row.dtype.kind == "f":
                value = tf.train.Feature(float_list=tf.train.FloatList(value=row))
            else:
                value = tf.train.Feature(int64_list=tf.train.Int64List(value=row))
            feature = {key: value}
            if labels is not None:
                feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[labels[i]]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_tfrecord_int_images_with_labels(tmp_path):
    rows = np.random.default_rng(0).integers(0, 256, size=(30, 4, 4, 3))
    _write_tfrecord(tmp_path / "d.tfrecord", rows, labels=np.arange(30) % 3)
    dataset = load_dataset(
        {"name": "tfrecord", "path": str(tmp_path / "d.tfrecord"), "event_shape": [4, 4, 3], "levels": 256,
         "label_key": "label", "conditional": True}
    )
    assert dataset.spec.event_shape == (4, 4, 3) and dataset.spec.kind == "image"
    assert dataset.spec.num_classes == 3 and _total(dataset) == 30
    all_x = np.concatenate([s.x for s in dataset.splits.values()])
    assert {r.tobytes() for r in all_x} == {r.astype(np.float32).tobytes() for r in rows}


def test_tfrecord_errors(tmp_path):
    path = tmp_path / "d.tfrecord"
    _write_tfrecord(path, np.zeros((5, 6), np.float32))
    config = {"name": "tfrecord", "path": str(path)}
    with pytest.raises(ValueError, match="option 'event_shape' \\(list of ints\\) is required"):
        load_dataset(config)
    with pytest.raises(ValueError, match=r"record 0 feature 'x' has 6 values; event_shape \(5,\) needs 5"):
        load_dataset({**config, "event_shape": [5]})
    with pytest.raises(ValueError, match=r"record 0 has no feature 'pixels' \(features: \['x'\]\)"):
        load_dataset({**config, "event_shape": [6], "feature_key": "pixels"})
    path.write_bytes(b"garbage that is not a tfrecord")
    with pytest.raises(ValueError, match="not a readable TFRecord file"):
        load_dataset({**config, "event_shape": [6]})
