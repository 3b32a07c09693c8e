"""Exports the latent-space tests share, made once per session, and one real server
(tfgen's, on free loopback ports) serving them; the models are described in
latent_exports.py."""

import os

import pytest
import zoo
from latent_exports import NAMES, SHIPPED_FLOW, write_decode_only


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """{name: (model, base path)}: each model exported as version 1 of its own base path."""
    from tfgen.export.saved_model import export_model

    root = tmp_path_factory.mktemp("latent_exports")
    result = {}
    for name, zoo_name in NAMES.items():
        model = zoo.cached(zoo_name)
        export_model(model, str(root / name), version=1)
        result[name] = (model, str(root / name))
    result["decode_only"] = (None, os.path.dirname(write_decode_only(str(root / "decode_only" / "1"))))
    return result


@pytest.fixture(scope="session")
def server(exports):
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread

    models = [ModelConfig(name=name, base_path=path) for name, (_, path) in exports.items()]
    models.append(ModelConfig(name="digits_realnvp", base_path=SHIPPED_FLOW))
    srv = start_in_thread(ServerOptions(models=models, port=0, rest_api_port=None))
    yield srv
    srv.stop()
