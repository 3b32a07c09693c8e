"""Built-in datasets, option checking, the shared split and tf.data input."""

import numpy as np
import pytest

from tfgen.data import Dataset, DataSpec, Split, dataset_names, load_dataset, to_tf_dataset
from tfgen.data.datasets import training_batches
from tfgen.data.datasets import split_indices, validate_examples

TOYS = ["two_moons", "circles", "eight_gaussians", "checkerboard"]


def _check_dataset(dataset, event_shape):
    assert isinstance(dataset, Dataset)
    assert dataset.spec.event_shape == event_shape
    for split in dataset.splits.values():
        assert isinstance(split, Split)
        assert split.x.dtype == np.float32 and split.x.shape[1:] == event_shape
        assert split.y is None or (split.y.dtype == np.int32 and split.y.shape == (len(split.x),))


def test_every_builtin_is_registered():
    assert set(TOYS + ["digits", "photo_patches", "npy", "npz", "image_folder", "tfrecord"]) <= set(dataset_names())


def test_digits_is_a_stratified_17_level_image_dataset():
    dataset = load_dataset({"name": "digits"})
    _check_dataset(dataset, (8, 8, 1))
    assert dataset.spec.levels == 17 and dataset.spec.kind == "image"
    assert dataset.spec.num_classes is None  # labels kept, but the spec is unconditional
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    assert sum(sizes.values()) == 1797
    assert abs(sizes["test"] / 1797 - 0.15) < 0.01 and abs(sizes["validation"] / 1797 - 0.15) < 0.01
    assert set(np.bincount(dataset.splits["test"].y)) <= {26, 27, 28}  # every class in proportion
    for split in dataset.splits.values():
        assert split.x.min() == 0 and split.x.max() == 16 and np.all(split.x == np.round(split.x))


def test_digits_split_is_fixed_by_seed_and_disjoint():
    a = load_dataset({"name": "digits", "seed": 0}).splits
    b = load_dataset({"name": "digits", "seed": 0}).splits
    c = load_dataset({"name": "digits", "seed": 1}).splits
    np.testing.assert_array_equal(a["test"].x, b["test"].x)
    assert not np.array_equal(a["test"].x, c["test"].x)
    rows = {name: {s.tobytes() for s in split.x} for name, split in a.items()}
    # digits has a few duplicate images, so allow a handful of coincidences
    assert len(rows["train"] & rows["test"]) < 5


def test_conditional_digits_declares_ten_classes():
    assert load_dataset({"name": "digits", "conditional": True}).spec.num_classes == 10


def test_perturbed_digits_replace_training_pixels_only_at_the_rate():
    from tfgen.errors import UserError

    clean = load_dataset({"name": "digits", "seed": 0}).splits
    noisy = load_dataset({"name": "digits", "seed": 0, "perturbation": 0.2}).splits
    again = load_dataset({"name": "digits", "seed": 0, "perturbation": 0.2}).splits
    np.testing.assert_array_equal(noisy["train"].x, again["train"].x)  # seeded
    np.testing.assert_array_equal(noisy["train"].y, clean["train"].y)
    changed = np.mean(noisy["train"].x != clean["train"].x)
    assert abs(changed - 0.2 * 16 / 17) < 0.01  # a replacement keeps the pixel 1 time in 17
    x = noisy["train"].x
    assert x.min() == 0 and x.max() == 16 and np.all(x == np.round(x))
    for split in ("validation", "test"):
        np.testing.assert_array_equal(noisy[split].x, clean[split].x)
    with pytest.raises(UserError, match="perturbation is a probability"):
        load_dataset({"name": "digits", "perturbation": 1.5})


def test_photo_patches_come_from_disjoint_regions():
    dataset = load_dataset({"name": "photo_patches", "num_patches": 3000, "patch_size": 4, "seed": 3})
    _check_dataset(dataset, (4, 4, 3))
    assert dataset.spec.levels == 256 and sum(len(s) for s in dataset.splits.values()) == 3000
    train = {p.tobytes() for p in dataset.splits["train"].x}
    assert not any(p.tobytes() in train for p in dataset.splits["test"].x)
    assert 0.05 < len(dataset.splits["test"]) / 3000 < 0.15


@pytest.mark.parametrize("name", TOYS)
def test_toys_are_standardized_2d(name):
    dataset = load_dataset({"name": name, "num_samples": 4000, "seed": 1})
    _check_dataset(dataset, (2,))
    spec = dataset.spec
    assert spec.levels is None and spec.kind == "vector" and (spec.low, spec.high) == (-3.0, 3.0)
    x = dataset.splits["train"].x
    assert np.all(np.abs(x.mean(0)) < 0.15) and np.all(np.abs(x.std(0) - 1) < 0.15)
    assert np.all((x > spec.low) & (x < spec.high))


def test_unknown_option_names_the_key():
    with pytest.raises(ValueError, match="unknown option 'num_sample'"):
        load_dataset({"name": "two_moons", "num_sample": 10})


@pytest.mark.parametrize(
    "option, value, expected",
    [("num_samples", "100", "int"), ("noise", True, "float"), ("seed", 1.5, "int"), ("conditional", 1, "bool")],
)
def test_wrong_option_type_names_key_and_type(option, value, expected):
    name = "digits" if option == "conditional" else "two_moons"
    with pytest.raises(ValueError, match=f"option '{option}' must be {expected}"):
        load_dataset({"name": name, option: value})


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits"):
        load_dataset({"name": "mnist"})


def test_split_fractions_and_zero_fraction_drops_the_split():
    idx = split_indices(1000, seed=0, validation_fraction=0.2, test_fraction=0.0)
    assert set(idx) == {"train", "validation"} and len(idx["validation"]) == 200
    assert len(np.intersect1d(idx["train"], idx["validation"])) == 0
    with pytest.raises(ValueError, match="must be < 1"):
        split_indices(10, seed=0, validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="too few"):
        split_indices(2, seed=0, validation_fraction=0.1, test_fraction=0.1)


def test_grouped_split_keeps_groups_together():
    groups = np.repeat(np.arange(50), 7)
    idx = split_indices(len(groups), seed=0, validation_fraction=0.2, test_fraction=0.2, groups=groups)
    seen = [set(groups[i]) for i in idx.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


@pytest.mark.parametrize(
    "x, kwargs, message",
    [
        (np.array([["a", "b"]]), {}, "must be numeric"),
        (np.zeros((0, 2)), {}, "no examples"),
        (np.zeros((3, 2)), {"event_shape": (3,)}, r"shape \(2,\), expected event_shape \(3,\)"),
        (np.array([[0.0, np.nan], [np.inf, np.nan]]), {}, r"3 NaN/Inf value\(s\), first at x\[0, 1\]"),
        (np.array([[0.0, 1.0], [17.0, 2.0]]), {"levels": 17}, r"1 value\(s\) outside \[0, 16\].*x\[1, 0\]"),
        (np.array([[0.5, 1.0]]), {"levels": 17}, "non-integer"),
    ],
)
def test_validation_errors_name_the_source_and_problem(x, kwargs, message):
    with pytest.raises(ValueError, match=f"^data.npy: .*{message}"):
        validate_examples(x, source="data.npy", **kwargs)


def test_label_validation():
    with pytest.raises(ValueError, match="labels have shape"):
        validate_examples(np.zeros((3, 2)), np.zeros(2, np.int64), source="s")
    with pytest.raises(ValueError, match="labels must be >= 0"):
        validate_examples(np.zeros((2, 2)), np.array([0, -1]), source="s")


def test_to_tf_dataset_yields_x_or_pairs():
    dataset = load_dataset({"name": "digits", "conditional": True})
    train = dataset.splits["train"]
    x, y = next(iter(to_tf_dataset(train, dataset.spec, 32, shuffle=True, seed=0)))
    assert x.shape == (32, 8, 8, 1) and y.dtype.name == "int32"
    unconditional = DataSpec((8, 8, 1), kind="image", levels=17)
    batches = list(to_tf_dataset(train, unconditional, 500, shuffle=False, drop_remainder=True))
    assert len(batches) == len(train) // 500 and batches[0].shape == (500, 8, 8, 1)
    np.testing.assert_array_equal(batches[0].numpy(), train.x[:500])
    repeated = to_tf_dataset(train, unconditional, 1000, shuffle=True, seed=1, repeat=True)
    assert sum(1 for _ in repeated.take(5)) == 5


def test_training_batches_are_a_function_of_the_seed_and_resume_at_any_step():
    dataset = load_dataset({"name": "digits", "conditional": True})
    train = dataset.splits["train"]
    n, batch = len(train), 64  # batches cross passes: n is no multiple of 64

    def stream(seed, start_step, steps):
        return [(x.numpy(), y.numpy()) for x, y in training_batches(train, dataset.spec, batch, seed, start_step)
                .take(steps)]

    whole = stream(3, 0, 2 * n // batch + 2)
    assert n % batch and whole[0][0].shape == (64, 8, 8, 1) and whole[0][1].dtype.name == "int32"
    # Each pass is a permutation of the split (rows with their labels), a new one per pass.
    rows = np.concatenate([x.reshape(batch, -1) for x, _ in whole])
    first, second = rows[:n], rows[n:2 * n]
    assert sorted(map(bytes, first)) == sorted(map(bytes, train.x.reshape(n, -1)))
    assert sorted(map(bytes, second)) == sorted(map(bytes, first)) and not np.array_equal(first, second)
    labels = {}
    for row, label in zip(train.x.reshape(n, -1), train.y):
        labels.setdefault(bytes(row), set()).add(int(label))
    assert all(int(y) in labels[bytes(r)] for r, y in zip(rows, np.concatenate([y for _, y in whole])))
    # A stream started at step k (a resumed run, mid-pass too) reads batch k on.
    for start in (1, n // batch, n // batch + 1):
        for (x, y), (wx, wy) in zip(stream(3, start, 3), whole[start:start + 3]):
            np.testing.assert_array_equal(x, wx)
            np.testing.assert_array_equal(y, wy)
    assert not np.array_equal(stream(4, 0, 1)[0][0], whole[0][0])  # another seed, another order


def test_to_tf_dataset_shuffle_is_seeded():
    dataset = load_dataset({"name": "two_moons", "num_samples": 200})
    first = [next(iter(to_tf_dataset(dataset.splits["train"], dataset.spec, 8, True, seed=5))).numpy()
             for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])


def test_conditional_spec_needs_labels():
    split = Split(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="no labels"):
        to_tf_dataset(split, DataSpec((2,), num_classes=3), 2, shuffle=False)


@pytest.mark.parametrize("option, value", [("patch_size", 0), ("patch_size", 200), ("num_patches", 0)])
def test_photo_patches_rejects_bad_sizes(option, value):
    with pytest.raises(ValueError, match=f"{option} must be"):
        load_dataset({"name": "photo_patches", option: value})
