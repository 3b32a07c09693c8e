"""The session-wide `exports` fixture (see export_fixtures.py)."""

import pytest
from export_fixtures import Exports


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    return Exports(tmp_path_factory.mktemp("exports"))
