"""A TF-Serving-compatible model server and client for any SavedModel.

Knows nothing of `tfgen.models`: it serves SavedModels from disk, as
`tensorflow_model_server` does. Imports are lazy so `tfgen --help` stays fast.

    from tfgen.serving import Client
"""

__all__ = ["Client", "ModelServer", "ServerOptions", "start_in_thread"]


def __getattr__(name):
    if name == "Client":
        from tfgen.serving.client import Client

        return Client
    if name in ("ModelServer", "ServerOptions", "start_in_thread"):
        from tfgen.serving import server

        return getattr(server, name)
    raise AttributeError(f"module 'tfgen.serving' has no attribute {name!r}")
