import os
import shutil

import pytest
import toy_savedmodels as savedmodels


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


def make_server(models, **overrides):
    from tfgen.serving.server import ServerOptions, start_in_thread

    options = dict(models=models, port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2)
    options.update(overrides)
    return start_in_thread(ServerOptions(**options))


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


class Rest:
    """Minimal JSON-over-HTTP client on the standard library (no extra dependency)."""

    def __init__(self, base_url):
        self.base_url = base_url

    def request(self, method, path, body=None, raw=None):
        import json
        import urllib.error
        import urllib.request

        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
                status = r.status
        except urllib.error.HTTPError as e:
            text, status = e.read().decode(), e.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None, raw=None):
        return self.request("POST", path, body, raw)


@pytest.fixture(scope="module")
def rest(server):
    return Rest(server.rest_url)
