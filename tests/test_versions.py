"""tfgen.versions: which directory names are versions, and which versions are complete."""

import pytest

from tfgen.versions import INT64_MAX, parse_version, version_dirs


@pytest.mark.parametrize("name, version", [
    ("1", 1), ("0", 0), ("007", 7), (str(INT64_MAX), INT64_MAX),
])
def test_ascii_digit_names_within_int64_are_versions(name, version):
    assert parse_version(name) == version


@pytest.mark.parametrize("name", [
    "²",  # str.isdigit() is True, int() raises
    "٣",  # Arabic-Indic three: int() accepts it, TF Serving does not
    "7\n", " 7", "+7", "-1", "1.5", "1_000", "", "latest", ".tmp-3-1234", ".3.tmp-1234",
    str(INT64_MAX + 1),
])
def test_other_names_are_not_versions(name):
    assert parse_version(name) is None


def test_only_complete_version_directories_are_listed(tmp_path):
    def version(name, graph_file="saved_model.pb"):
        (tmp_path / name).mkdir()
        if graph_file:
            (tmp_path / name / graph_file).write_bytes(b"")
        return str(tmp_path / name)

    one = version("1")
    two = version("2", "saved_model.pbtxt")
    version("3", graph_file=None)  # still being copied in
    for name in ("²", "٣", str(INT64_MAX + 1), "latest"):
        version(name)
    (tmp_path / "4").write_bytes(b"")  # a file, not a directory
    assert version_dirs(str(tmp_path)) == {1: one, 2: two}


def test_the_name_spelled_as_the_number_wins(tmp_path):
    for name in ("007", "7", "07"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert version_dirs(str(tmp_path)) == {7: str(tmp_path / "7")}


def test_a_missing_base_path_is_none_and_an_empty_one_has_no_versions(tmp_path):
    assert version_dirs(str(tmp_path / "missing")) is None
    (tmp_path / "file").write_bytes(b"")
    assert version_dirs(str(tmp_path / "file")) is None
    assert version_dirs(str(tmp_path)) == {}
