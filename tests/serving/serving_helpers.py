"""What serving tests share besides fixtures: an in-process server and a REST client.

A module of its own (not conftest) so tests/serving and tests/export, each with a
conftest, can be collected in one pytest run.
"""

import os

#: The shipped models' root (TFGEN_SERVING_MODELS=DIR points it elsewhere).
SHIPPED_ROOT = os.environ.get("TFGEN_SERVING_MODELS",
                              os.path.join(os.path.dirname(__file__), "..", "..", "saved_models"))


def _shipped_models():
    from tfgen.serving.config import discover_models

    try:
        return discover_models(SHIPPED_ROOT)
    except FileNotFoundError:
        return []


#: The ModelConfig of every model under SHIPPED_ROOT ([] while there is none).
SHIPPED_MODELS = _shipped_models()

#: Shipped models served only under -m slow, by a server of their own: the digits DDPM's
#: load and warmup is the longest of the shipped models' (9.7-10.5 s at two loads at once
#: here: its log_prob requests run the T = 1000-step bound; classify a 50-term estimate
#: for each of 10 classes). The diffusion family's export is checked by default through the session
#: loader of tests/models/test_contract.py's ddpm_vector.
SERVED_WHEN_SLOW = ("digits_ddpm",)


def make_server(models, **overrides):
    from tfgen.serving.server import ServerOptions, start_in_thread

    # A test's server lives seconds: re-warming its models optimized in the background
    # would only compete with the test (test_instantiation.py tests the quick warmup).
    options = dict(models=models, port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2,
                   quick_warmup=False)
    options.update(overrides)
    return start_in_thread(ServerOptions(**options))


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
