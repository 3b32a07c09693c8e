"""The shipped 2-D score model (saved_models/checkerboard_score): its probability-flow
ODE density is normalized, and it is the distribution its annealed Langevin sampler
draws from (both through the export's signatures)."""

import os

import numpy as np
import pytest

from tfgen.export.reader import call_signature, resolve_version, sample_rows

BASE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "saved_models", "checkerboard_score")
#: The board's squares in the toy's standardized coordinates (tfgen/data/builtin.py):
#: 2 / 2.309 wide, the 4 x 4 board centred on 0, one empty square around it.
SQUARE = 2.0 / 2.309
EDGES = SQUARE * np.arange(-3, 4)
CELLS_PER_SQUARE = 8


def square_masses(density_at):
    """The density's mass in each of the 6 x 6 squares (midpoint rule, 8 x 8 cells each)
    and its total mass over them."""
    fine = np.linspace(EDGES[0], EDGES[-1], 6 * CELLS_PER_SQUARE + 1, dtype=np.float32)
    centres = (fine[:-1] + fine[1:]) / 2
    points = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    cells = np.exp(density_at(points)).reshape(6, CELLS_PER_SQUARE, 6, CELLS_PER_SQUARE)
    return cells.sum(axis=(1, 3)) * float(fine[1] - fine[0]) ** 2


@pytest.mark.skipif(not os.path.isdir(BASE), reason="saved_models/checkerboard_score is not shipped")
def test_ode_density_integrates_to_one_and_is_what_langevin_samples():
    path = resolve_version(BASE)
    masses = square_masses(lambda x: call_signature(path, "log_prob", {"x": x})["log_prob"])
    assert abs(masses.sum() - 1.0) < 0.03, masses.sum()
    samples = call_signature(path, "sample", sample_rows(1000))["samples"]
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[EDGES, EDGES])
    fractions = counts / len(samples)
    # The 8 occupied squares of the board hold the mass, under both.
    board = np.zeros((6, 6), bool)
    for i in range(4):
        for j in range(4):
            board[i + 1, j + 1] = (i + j) % 2 == 0
    for name, distribution in (("density", masses), ("samples", fractions)):
        assert distribution[board].min() > 0.08 and distribution[~board].max() < 0.05, (name, distribution)
    total_variation = 0.5 * np.abs(masses / masses.sum() - fractions).sum()
    assert total_variation < 0.08, (total_variation, masses, fractions)
