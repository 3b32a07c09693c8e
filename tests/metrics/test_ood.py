"""OOD scores, thresholds and their evaluation (tfgen.metrics.ood), and `tfgen ood fit/apply`."""

import json

import numpy as np
import pytest
import toy_savedmodels

from tfgen.cli import main
from tfgen.metrics.ood import auroc, fit_threshold, fpr_at_tpr, png_code_bits, score


def test_auroc_is_sklearn_s_with_ties_and_fpr_at_tpr_counts_in_distribution():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    inside, outside = rng.integers(0, 20, 300).astype(float), rng.integers(5, 30, 200).astype(float)
    labels = np.r_[np.zeros(300), np.ones(200)]
    assert auroc(inside, outside) == pytest.approx(roc_auc_score(labels, np.r_[inside, outside]))
    assert auroc(inside, inside) == pytest.approx(0.5)
    # OOD scores 10..29: the threshold flagging 95% of them is 11; inside 0..9 none, 0..19 has 9 of 20 >= 11.
    assert fpr_at_tpr(np.arange(10.0), np.arange(10.0, 30.0)) == 0.0
    assert fpr_at_tpr(np.arange(20.0), np.arange(10.0, 30.0)) == pytest.approx(9 / 20)


def test_a_threshold_flags_at_most_the_false_positive_rate():
    scores = np.random.default_rng(1).normal(size=1000)
    for rate in (0.0, 0.01, 0.05, 0.3):
        flagged = np.mean(scores > fit_threshold(scores, rate))
        assert rate - 0.002 <= flagged <= rate
    with pytest.raises(ValueError, match="finite"):
        fit_threshold([0.0, np.nan], 0.05)


def test_scores_likelihood_ratio_and_complexity():
    log_prob = np.array([-10.0, -20.0])
    np.testing.assert_allclose(score("log_prob", log_prob), [10 / np.log(2), 20 / np.log(2)])
    np.testing.assert_allclose(score("likelihood_ratio", log_prob, background_log_prob=[-10.0, -5.0]),
                               [0.0, 15 / np.log(2)])
    constant = np.full([1, 8, 8, 1], 7.0)
    noise = np.random.default_rng(2).integers(0, 17, [1, 8, 8, 1])
    bits = png_code_bits(np.concatenate([constant, noise]), 17)
    assert bits[0] < bits[1]  # a constant image is cheap to code
    np.testing.assert_allclose(score("complexity", log_prob, code_bits=bits), score("log_prob", log_prob) - bits)


def test_ood_fit_then_apply_on_tfgen_score_outputs(tmp_path, capsys):
    model = str(tmp_path / "vec")
    toy_savedmodels.write_model(model, 1, warmup=False)
    rng = np.random.default_rng(3)
    np.save(tmp_path / "held_out.npy", rng.normal(size=[400, 2]).astype(np.float32))
    new = np.concatenate([rng.normal(size=[100, 2]), rng.normal(size=[100, 2]) + 6]).astype(np.float32)
    new[0] = np.nan
    np.save(tmp_path / "new.npy", new)
    for name in ("held_out", "new"):
        assert main(["score", "--model", model, "--input", str(tmp_path / f"{name}.npy"),
                     "--out", str(tmp_path / f"{name}.parquet")]) == 0
    assert main(["ood", "fit", "--scores", str(tmp_path / "held_out.parquet"), "--fpr", "0.05",
                 "--out", str(tmp_path / "t.json")]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["score"] == "log_prob"
    assert main(["ood", "apply", "--threshold", str(tmp_path / "t.json"), "--scores",
                 str(tmp_path / "new.parquet"), "--out", str(tmp_path / "flags.csv")]) == 0
    import csv

    with open(tmp_path / "flags.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 200 and table[0]["error"] and table[0]["rejected"] == ""
    shifted = [r["rejected"] == "true" for r in table[100:]]
    inside = [r["rejected"] == "true" for r in table[1:100]]
    assert all(shifted) and sum(inside) <= 12
    threshold = json.loads((tmp_path / "t.json").read_text())["threshold"]
    for row in table[1:]:  # the score written is -log2 p(x), the value the threshold cuts
        assert abs(float(row["ood_score"]) + float(row["log_prob"]) / np.log(2)) < 1e-9
        assert (row["rejected"] == "true") == (float(row["ood_score"]) > threshold)
    assert main(["ood", "apply", "--threshold", str(tmp_path / "t.json"), "--score", "complexity",
                 "--scores", str(tmp_path / "new.parquet"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "fitted on score 'log_prob'" in capsys.readouterr().err
