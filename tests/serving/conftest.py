import os
import shutil

import pytest
import toy_savedmodels as savedmodels
from serving_helpers import SERVED_WHEN_SLOW, SHIPPED_MODELS, Rest, make_server


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Exported versions built once per session: {"toy": path, "cond": path}."""
    root = tmp_path_factory.mktemp("exports")
    return {
        "toy": savedmodels.write_model(str(root / "toy"), 1),
        "cond": savedmodels.write_model(str(root / "cond"), 1, conditional=True),
    }


@pytest.fixture
def model_root(tmp_path, exported):
    """A saved_models/ like directory: toy/1 and cond/1."""
    root = tmp_path / "saved_models"
    for name, src in exported.items():
        os.makedirs(root / name)
        shutil.copytree(src, root / name / "1")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, exported):
    """One in-process server on free loopback ports serving toy/1 and cond/1."""
    from tfgen.serving.model_manager import ModelConfig

    root = tmp_path_factory.mktemp("served")
    models = []
    for name, src in exported.items():
        shutil.copytree(src, root / name / "1")
        models.append(ModelConfig(name=name, base_path=str(root / name)))
    srv = make_server(models)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    from tfgen.serving import Client

    with Client(server.grpc_address, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def rest(server):
    return Rest(server.rest_url)


@pytest.fixture(scope="session")
def shipped_server():
    """One server of the shipped models but `SERVED_WHEN_SLOW`, shared by the modules
    that test them served: loading and warming them takes most of a minute."""
    srv = make_server([m for m in SHIPPED_MODELS if m.name not in SERVED_WHEN_SLOW], file_system_poll_wait_seconds=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def slow_shipped_server():
    """A server of the shipped models in `SERVED_WHEN_SLOW` (tests under -m slow)."""
    srv = make_server([m for m in SHIPPED_MODELS if m.name in SERVED_WHEN_SLOW], file_system_poll_wait_seconds=0)
    yield srv
    srv.stop()
