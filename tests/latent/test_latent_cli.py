"""`tfgen interpolate`, `tfgen attribute`, `tfgen reconstruct` on the shipped digits flow,
as a user runs them: locally and against a real server, pictures and arrays, bad input."""

import numpy as np
import pytest
from latent_exports import SHIPPED_FLOW
from PIL import Image

from tfgen.cli import main
from tfgen.data.datasets import load_dataset
from tfgen.export.reader import call_signature, resolve_version


@pytest.fixture(scope="module")
def test_split():
    return load_dataset({"name": "digits"}).splits["test"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_reconstruct_writes_inputs_above_their_reconstructions(capsys, tmp_path, test_split):
    code, out, _ = run(capsys, "reconstruct", "--model", SHIPPED_FLOW, "--dataset", "digits", "--rows", "0-7",
                       "--out", str(tmp_path / "rec.npy"))
    assert code == 0 and "rows [0, 1, 2, 3, 4, 5, 6, 7] of the test split of digits" in out
    grid = np.load(tmp_path / "rec.npy")
    assert grid.shape == (2, 8, 8, 8, 1)
    np.testing.assert_array_equal(grid[0], test_split.x[:8])
    np.testing.assert_allclose(grid[1], grid[0], atol=1e-3)  # a flow reconstructs exactly
    assert run(capsys, "reconstruct", "--model", SHIPPED_FLOW, "--dataset", "digits", "--rows", "0-7",
               "--out", str(tmp_path / "rec.png"))[0] == 0
    picture = Image.open(tmp_path / "rec.png")
    assert picture.width > 3 * picture.height  # two rows of eight 8x8 digits


def test_interpolate_between_seeds_starts_and_ends_at_the_flow_s_samples(capsys, tmp_path):
    code, out, _ = run(capsys, "interpolate", "--model", SHIPPED_FLOW, "--seeds", "4,9", "--method", "both",
                       "--steps", "6", "--out", str(tmp_path / "seeds.npy"))
    assert code == 0 and "6 steps between seeds 4 and 9 (linear, slerp)" in out
    strips = np.load(tmp_path / "seeds.npy")
    assert strips.shape == (2, 6, 8, 8, 1)
    samples = call_signature(resolve_version(SHIPPED_FLOW), "sample", {
        "seed": np.array([4, 9], np.int64), "temperature": np.ones([2], np.float32)})["samples"]
    for strip in strips:
        np.testing.assert_allclose(strip[[0, -1]], samples, atol=1e-4)
    assert not np.array_equal(strips[0, 2:4], strips[1, 2:4])  # the two methods differ in between


@pytest.mark.slow  # 10 s; the default run keeps test_interpolate_between_seeds_...
def test_interpolate_between_rows_and_an_attribute_strip(capsys, tmp_path, test_split):
    code, _, _ = run(capsys, "interpolate", "--model", SHIPPED_FLOW, "--dataset", "digits", "--rows", "3,17",
                     "--out", str(tmp_path / "rows.npy"))
    strip = np.load(tmp_path / "rows.npy")
    assert code == 0 and strip.shape == (1, 8, 8, 8, 1)
    np.testing.assert_allclose(strip[0, [0, -1]], test_split.x[[3, 17]], atol=1e-3)

    common = ["attribute", "--model", SHIPPED_FLOW, "--dataset", "digits", "--rows", "0,5", "--strengths=-1,0,2"]
    code, out, _ = run(capsys, *common, "--with-label", "1", "--out", str(tmp_path / "a.npy"),
                       "--save-vector", str(tmp_path / "v.npy"))
    assert code == 0 and "labels [1] vs the rest over 269 examples" in out
    grid = np.load(tmp_path / "a.npy")
    assert grid.shape == (2, 3, 8, 8, 1)
    np.testing.assert_allclose(grid[:, 1], test_split.x[[0, 5]], atol=1e-3)  # strength 0
    assert not np.allclose(grid[:, 0], grid[:, 2])
    # A stored vector gives the same strip; the PNG is a grid of 2 rows x 3 columns.
    assert run(capsys, *common, "--vector", str(tmp_path / "v.npy"), "--out", str(tmp_path / "b.npy"))[0] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), grid)
    assert run(capsys, *common, "--with-label", "1", "--out", str(tmp_path / "a.png"))[0] == 0
    picture = Image.open(tmp_path / "a.png")
    assert 1.3 < picture.width / picture.height < 1.7


@pytest.mark.slow  # 17 s; tests/serving covers the server's encode and decode by default
def test_against_a_server_the_same_numbers(capsys, tmp_path, server):
    args = ["--dataset", "digits", "--rows", "2,11"]
    for where, model in (("local", ["--model", SHIPPED_FLOW]),
                         ("served", ["--server", server.grpc_address, "--model", "digits_realnvp"])):
        assert run(capsys, "interpolate", *model, *args, "--method", "slerp", "--out", str(tmp_path / f"i_{where}.npy"))[0] == 0
        assert run(capsys, "reconstruct", *model, *args, "--out", str(tmp_path / f"r_{where}.npy"))[0] == 0
    for tool in ("i", "r"):
        np.testing.assert_array_equal(np.load(tmp_path / f"{tool}_served.npy"), np.load(tmp_path / f"{tool}_local.npy"))


@pytest.mark.parametrize("argv, message", [
    (["reconstruct", "--dataset", "nope"], "unknown dataset 'nope'; known: ["),
    (["reconstruct", "--dataset", "digits", "--rows", "3,999"], "row 999 is out of range: the test split of digits has 269 rows"),
    (["reconstruct", "--dataset", "two_moons"], "dataset 'two_moons' has examples of shape [2]; the model takes [8, 8, 1]"),
    (["reconstruct"], "give the examples with --dataset NAME"),
    (["interpolate", "--seeds", "1,2,3"], "--seeds takes exactly two values, got [1, 2, 3]"),
    (["interpolate", "--seeds", "x"], "--seeds must be integers like 3,17 or 0-7"),
    (["interpolate", "--seeds", "1,2", "--condition", "3"], "is unconditional: drop --condition"),
    (["attribute", "--dataset", "digits"], "give --with-label"),
    (["attribute", "--dataset", "digits", "--with-label", "1", "--strengths", "1,nan"], "--strengths must be finite"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    code, out, err = run(capsys, *argv[:1], "--model", SHIPPED_FLOW, *argv[1:], "--out", str(tmp_path / "x.npy"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.npy").exists()


def test_bad_files_and_models_are_named(capsys, tmp_path, exports):
    x = np.zeros((3, 8, 8, 1), np.float32)
    x[1, 2, 3, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    argv = ["reconstruct", "--model", SHIPPED_FLOW, "--input", str(tmp_path / "x.npy")]
    code, _, err = run(capsys, *argv, "--rows", "0-2", "--out", str(tmp_path / "o.npy"))
    assert code == 2 and "x.npy row 1: non-finite input (NaN or Inf)" in err
    assert run(capsys, *argv, "--rows", "0,2", "--out", str(tmp_path / "o.npy"))[0] == 0  # the readable rows
    np.save(tmp_path / "v.npy", np.zeros(5, np.float32))
    code, _, err = run(capsys, "attribute", "--model", SHIPPED_FLOW, "--dataset", "digits", "--vector",
                       str(tmp_path / "v.npy"), "--out", str(tmp_path / "o.npy"))
    assert code == 2 and "attribute vector of shape [5] per row" in err and "takes [8, 8, 1]" in err
    code, _, err = run(capsys, "interpolate", "--model", exports["gan"][1], "--out", str(tmp_path / "o.npy"))
    assert code == 2 and "has no decode signature, so no latent space" in err
    code, _, err = run(capsys, "interpolate", "--model", exports["vae"][1], "--out", str(tmp_path / "o.png"))
    assert code == 2 and "vector data has no picture: use --out FILE.npy" in err


def test_a_vae_on_a_csv_with_a_label_column(capsys, tmp_path, exports):
    """Labels from a file's column; a VAE codes by its posterior mean, or by seeded draws."""
    from tfgen.latent import LatentSpace, LocalCaller

    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 2)).astype(np.float32)
    labels = (x[:, 1] > 0).astype(int)
    lines = ["a,b,label"] + [f"{p},{q},{label}" for (p, q), label in zip(x.tolist(), labels)]
    (tmp_path / "points.csv").write_text("\n".join(lines) + "\n")
    base = ["attribute", "--model", exports["vae"][1], "--input", str(tmp_path / "points.csv"),
            "--label-column", "label", "--with-label", "1", "--rows", "0,1", "--strengths", "0,1"]
    assert run(capsys, *base, "--out", str(tmp_path / "mean.npy"), "--save-vector", str(tmp_path / "v.npy"))[0] == 0
    space = LatentSpace(LocalCaller(exports["vae"][1]))
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), space.attribute_vector(x, labels == 1), atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "mean.npy")[:, 0], space.decode(space.encode(x[:2])), atol=1e-6)
    assert run(capsys, *base, "--code", "draw", "--out", str(tmp_path / "draw.npy"))[0] == 0
    assert not np.allclose(np.load(tmp_path / "draw.npy"), np.load(tmp_path / "mean.npy"))
