"""`tfgen publish --rollback/--restore/--list` on real directories (the swap under a
running server is tests/serving/test_retrain_loop.py)."""

import os

import pytest

from tfgen import cli
from tfgen.errors import PathExists, UserError
from tfgen.export.saved_model import next_version
from tfgen.publish import rollback
from tfgen.versions import version_dirs


def make_versions(base, *versions):
    for v in versions:
        os.makedirs(base / str(v))
        (base / str(v) / "saved_model.pb").write_bytes(b"graph %d" % v)


def test_rollback_sets_the_newest_aside_and_restore_puts_it_back(tmp_path, capsys):
    base = tmp_path / "moons"
    make_versions(base, 1, 2, 3)
    assert cli.main(["publish", str(base), "--rollback"]) == 0
    assert sorted(version_dirs(base)) == [1, 2] and (base / "rolled-back-3" / "saved_model.pb").read_bytes() == b"graph 3"
    assert "version 3 set aside" in capsys.readouterr().out
    assert next_version(str(base)) == 4  # a number a server served is never reused
    assert cli.main(["publish", str(base)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listing] == [["1", "published"], ["2", "served"], ["3", "rolled"]]
    assert cli.main(["publish", str(base), "--restore"]) == 0
    assert sorted(version_dirs(base)) == [1, 2, 3] and not (base / "rolled-back-3").exists()


def test_rollback_refusals_change_nothing(tmp_path, capsys):
    base = tmp_path / "moons"
    make_versions(base, 1)
    with pytest.raises(UserError, match="only version 1: nothing to roll back to"):
        rollback.rollback(str(base))
    with pytest.raises(UserError, match="is a version directory"):
        rollback.rollback(str(base / "1"))
    make_versions(base, 2)
    rollback.rollback(str(base))
    make_versions(base, 2)  # published again meanwhile
    with pytest.raises(PathExists, match="was published again; not overwritten"):
        rollback.restore(str(base))
    assert cli.main(["publish", str(base), "--restore", "7"]) == 2
    assert "no rolled-back version 7; it has [2]" in capsys.readouterr().err
    assert sorted(os.listdir(base)) == ["1", "2", "rolled-back-2"]
    assert cli.main(["publish", str(tmp_path / "nowhere"), "--rollback"]) == 2
