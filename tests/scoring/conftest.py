"""Exports shared by the scoring tests (tests/toy_savedmodels.py), written once a session."""

import pytest
import toy_savedmodels


@pytest.fixture(scope="session")
def scoring_exports(tmp_path_factory):
    """{name: base path}: `vec` 2-D vectors; `img` conditional 4x4x1 images (3 classes),
    both Gaussians of scale 1.5, the image one shifted by the class."""
    root = tmp_path_factory.mktemp("scoring_exports")
    bases = {"vec": str(root / "vec"), "img": str(root / "img")}
    toy_savedmodels.write_model(bases["vec"], 1, scale=1.5, warmup=False)
    toy_savedmodels.write_model(bases["img"], 1, conditional=True, event_shape=(4, 4, 1), scale=1.5, warmup=False)
    return bases
