"""Signature callers: one interface to an export's signatures, in this process or on a server.

The latent-space tools (`tfgen.latent.space`) only ever ask a caller three things, so they
run the same code, on the same numbers, whether the model is loaded here or served:

- `signatures`: `{name: {"inputs": {alias: (dtype, shape)}, "outputs": {...}, "defaults":
  [alias]}}`, numpy dtype names and -1 for unknown dims (what `Client.signature` returns
  for a served model; `tfgen.serving.signatures.describe`);
- `call(name, inputs)`: `{alias: np.ndarray}` in, `{alias: np.ndarray}` out;
- `data_spec()`: what the data is (a `DataSpec`): from tfgen.json locally, from the
  model's `describe` signature on a server (which records no value range).

`LocalCaller("saved_models/NAME[/VERSION]")` loads the export as `tfgen serve` does
(`tfgen.export.reader.Export`);
`ServerCaller("HOST:PORT", "NAME")` calls a `tfgen serve` or `tensorflow_model_server` over
gRPC (`tfgen.serving.Client`). Neither imports model code.
"""

import os

from tfgen.data.spec import DataSpec
from tfgen.errors import UserError


class LocalCaller:
    """An export loaded in this process.

    Args:
      path: `saved_models/NAME[/VERSION]` (the newest version if none is named).
      version: optional version under `path`.
    """

    def __init__(self, path, version=None):
        from tfgen.export.reader import Export, read_metadata, resolve_version

        self.source = resolve_version(path if version is None else os.path.join(path, str(version)))
        self.metadata = read_metadata(self.source)
        self._export = Export(self.source)
        self._functions = {name: self._export.function(name) for name in self._export.signature_defs}
        self.signatures = {name: self._export.describe(name) for name in self._export.signature_defs}

    @property
    def recorded_latent_shape(self):
        """The latent shape tfgen.json records (None if it records no latent space)."""
        shape = self.metadata.get("latent_shape")
        return tuple(shape) if shape else None

    def call(self, name, inputs):
        import tensorflow as tf

        try:
            outputs = self._functions[name](**inputs)
        except (tf.errors.InvalidArgumentError, tf.errors.FailedPreconditionError) as e:
            raise UserError(f"{self.source}: {name} refused the inputs: {e.message.splitlines()[0]}") from None
        return {k: v.numpy() for k, v in outputs.items()}

    def data_spec(self):
        return DataSpec.from_dict(self.metadata["data_spec"])

    def close(self):
        pass


class ServerCaller:
    """A model served over the TF Serving gRPC API.

    Args:
      address: "HOST:PORT" of the gRPC endpoint.
      model: the served model's name.
      version: optional version (default: the server's default version).
      timeout: seconds per call.
    """

    recorded_latent_shape = None  # a TF Serving client reads no files

    def __init__(self, address, model, version=None, timeout=60.0):
        from tfgen.serving import Client

        self.client = Client(address, timeout=timeout)
        self.model, self.version = model, version
        self.source = f"{model} at {address}" + (f" version {version}" if version else "")
        try:
            names = self._rpc(lambda: self.client.metadata(model, version))["signature_def"]
            self.signatures = {name: self._rpc(lambda: self.client.signature(model, name, version))
                               for name in names if not name.startswith("__")}
        except BaseException:
            self.client.close()
            raise

    def _rpc(self, request):
        import grpc

        try:
            return request()
        except grpc.RpcError as e:
            raise UserError(f"{self.source}: {e.code().name}: {e.details()}") from None

    def call(self, name, inputs):
        return self._rpc(lambda: self.client.predict(self.model, inputs, name, self.version))

    def data_spec(self):
        return DataSpec.from_description(self._rpc(lambda: self.client.describe(self.model, self.version)))

    def close(self):
        self.client.close()
