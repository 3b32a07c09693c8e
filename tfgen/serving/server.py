"""The model server: model manager + gRPC + REST + health, with a graceful drain.

`ModelServer(options).serve()` runs until SIGTERM/SIGINT, then: reports NOT_SERVING on
grpc.health.v1 and 503 on /readyz, waits `drain_delay_seconds` for load balancers to
notice, stops accepting connections, lets in-flight requests finish (up to
`grace_seconds`), drains the batch queues and exits 0.

`start_in_thread(options)` runs the same server on a background event loop (tests,
notebooks) and returns it once every model is loaded and both ports listen.
"""

import asyncio
import dataclasses
import gc
import logging
import signal
import threading

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tfgen.errors import UserError
from tfgen.serving.batching import BatchingParameters
from tfgen.serving.config import DEFAULT_PROMETHEUS_PATH
from tfgen.serving.connections import GuardedConnections, default_max_connections
from tfgen.serving.core import ServingCore
from tfgen.serving.grpc_service import add_services
from tfgen.serving.metrics import ServingMetrics
from tfgen.serving.model_manager import MAX_CONCURRENT_LOADS, ModelManager
from tfgen.serving.rest import LOOPBACK_HOSTS, RestApi, is_loopback
from tfgen.serving.signatures import InputLimits

log = logging.getLogger("tfgen.serving")

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
REFUSE_SECONDS = 0.25


@dataclasses.dataclass
class ServerOptions:
    models: list  # [ModelConfig]
    host: str = "127.0.0.1"
    port: int = 8500  # 0 picks a free port
    rest_api_port: int = 8501  # 0 picks a free port; None disables REST
    file_system_poll_wait_seconds: float = 1.0
    batching: BatchingParameters = None  # None: batching off
    limits: InputLimits = InputLimits()
    max_message_bytes: int = 64 * 1024 * 1024
    prometheus_path: str = DEFAULT_PROMETHEUS_PATH  # None disables metrics endpoint
    ssl_config: object = None  # SSLConfig proto (gRPC port), or None
    runtime_threads: int = 4
    grace_seconds: float = 30.0
    drain_delay_seconds: float = 0.0
    warmup: bool = True
    rest_api_timeout_seconds: float = 30.0
    rest_read_timeout_seconds: float = 30.0  # a request's headers and body; 0 = none
    rest_max_connections: int = None  # None: connections.default_max_connections()
    # Host header names REST accepts besides loopback ones when bound to loopback;
    # "*" accepts any. Bound elsewhere, any Host is accepted.
    rest_allowed_hosts: tuple = ()
    max_concurrent_loads: int = MAX_CONCURRENT_LOADS  # models loading and warming up at once
    quick_warmup: bool = True  # warm up unoptimized, optimize after the loads (model_manager)
    load_signatures_only: bool = True  # tfgen.serving.loader; False: tf.saved_model.load


class ModelServer:
    def __init__(self, options):
        self.options = options
        self.metrics = ServingMetrics()
        self.manager = ModelManager(
            options.models,
            limits=options.limits,
            poll_wait_seconds=options.file_system_poll_wait_seconds,
            warmup=options.warmup,
            on_load_attempt=self.metrics.load_attempt,
            max_concurrent_loads=options.max_concurrent_loads,
            quick_warmup=options.quick_warmup,
            load_signatures_only=options.load_signatures_only,
        )
        self.core = ServingCore(
            self.manager, options.batching, self.metrics, options.runtime_threads
        )
        self.draining = False
        self.grpc_port = None
        self.rest_port = None
        self._grpc = None
        self._runner = None
        self._rest_listener = None
        self._health = None
        self._stopped = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self):
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        await loop.run_in_executor(None, self.manager.start)
        o = self.options
        grpc_options = [
            ("grpc.max_send_message_length", o.max_message_bytes),
            ("grpc.max_receive_message_length", o.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        self._grpc = grpc.aio.server(options=grpc_options)
        add_services(self._grpc, self.core, self.metrics)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._grpc)
        address = f"{o.host}:{o.port}"
        try:
            if o.ssl_config is not None:
                credentials = _server_credentials(o.ssl_config)
                self.grpc_port = self._grpc.add_secure_port(address, credentials)
            else:
                self.grpc_port = self._grpc.add_insecure_port(address)
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            if o.ssl_config is not None and _port_free(o.host, o.port):
                raise UserError(
                    f"cannot listen for gRPC with TLS on {address}: gRPC refused the key or "
                    "certificate of --ssl_config_file (server_key and server_cert hold the PEM "
                    "text itself, not file names, and must match)"
                )
            raise UserError(f"cannot listen for gRPC on {address} (port in use?); see --port")
        await self._grpc.start()
        if o.rest_api_port is not None:
            await self._start_rest(loop)
        for service in ("", PREDICTION_SERVICE, MODEL_SERVICE):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        # The loaded models and TensorFlow are millions of objects that live as long as
        # the server: left to the collector, each full collection walks all of them
        # (~200 ms, stalling every request) whenever requests allocate enough, e.g. a
        # 4,000-row JSON body. Frozen, collections walk only what requests made.
        gc.freeze()

    async def _start_rest(self, loop):
        o = self.options
        allowed = None
        if is_loopback(o.host) and "*" not in o.rest_allowed_hosts:
            allowed = LOOPBACK_HOSTS + tuple(o.rest_allowed_hosts)
        api = RestApi(
            self.core,
            self.metrics,
            prometheus_path=o.prometheus_path,
            is_draining=lambda: self.draining,
            timeout_seconds=o.rest_api_timeout_seconds,
            allowed_hosts=allowed,
        )
        # handler_cancellation: a request whose client hung up is cancelled, and with it
        # the work it queued (see core.py).
        self._runner = web.AppRunner(
            api.app(o.max_message_bytes), shutdown_timeout=o.grace_seconds,
            access_log=None, handle_signals=False, handler_cancellation=True,
        )
        await self._runner.setup()
        max_connections = o.rest_max_connections or default_max_connections()
        api.connections = GuardedConnections(
            self._runner.server, max_connections, o.rest_read_timeout_seconds
        )
        try:
            self._rest_listener = await loop.create_server(
                api.connections, o.host, o.rest_api_port, reuse_address=True
            )
        except OSError as e:
            await self._grpc.stop(None)
            await self._runner.cleanup()
            raise UserError(
                f"cannot listen for REST on {o.host}:{o.rest_api_port} ({e.strerror}); "
                "see --rest_api_port"
            ) from None
        self.rest_port = self._rest_listener.sockets[0].getsockname()[1]

    async def stop(self):
        """Stop reporting healthy, drain in-flight requests, release everything."""
        if self.draining:
            await self._stopped.wait()
            return
        self.draining = True
        if self._health:
            await self._health.enter_graceful_shutdown()
        if self.options.drain_delay_seconds:
            await asyncio.sleep(self.options.drain_delay_seconds)
        # New requests get UNAVAILABLE from here (clients retry it); in-flight ones
        # finish before gRPC stops, since gRPC's own shutdown CANCELs what is pending.
        # Refusing lasts at least REFUSE_SECONDS, so that clients mid-way through a call
        # learn of it from an answer rather than from a cut connection.
        self.core.refusing = True
        loop = asyncio.get_running_loop()
        start = loop.time()
        give_up = start + self.options.grace_seconds
        while loop.time() < give_up and (
            self.core.in_flight or loop.time() < start + REFUSE_SECONDS
        ):
            await asyncio.sleep(0.01)
        tasks = []
        if self._grpc:
            tasks.append(self._grpc.stop(max(0.0, give_up - loop.time())))
        if self._rest_listener:
            self._rest_listener.close()  # stop accepting; open requests finish below
        if self._runner:
            tasks.append(self._runner.cleanup())
        await asyncio.gather(*tasks)
        await loop.run_in_executor(None, self.manager.stop)
        await loop.run_in_executor(None, self.core.close)
        self._stopped.set()

    async def wait_stopped(self):
        await self._stopped.wait()

    def serve(self, on_ready=None):
        """Run until SIGTERM/SIGINT, then drain and return."""

        async def main():
            await self.start()
            loop = asyncio.get_running_loop()
            stop_requested = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop_requested.set)
            if on_ready:
                on_ready(self)
            await stop_requested.wait()
            log.info("Signal received: draining in-flight requests")
            await self.stop()

        asyncio.run(main())


def _port_free(host, port):
    """Whether a plain socket can bind host:port (so a failed listen was not the port)."""
    import socket

    if not port:
        return True
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _server_credentials(ssl_config):
    pairs = [(ssl_config.server_key.encode(), ssl_config.server_cert.encode())]
    root = ssl_config.custom_ca.encode() if ssl_config.custom_ca else None
    return grpc.ssl_server_credentials(
        pairs, root_certificates=root, require_client_auth=bool(ssl_config.client_verify)
    )


class BackgroundServer:
    """A ModelServer on its own event loop thread; `stop()` drains and joins."""

    def __init__(self, options):
        self.server = ModelServer(options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result()
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise

    @property
    def grpc_address(self):
        return f"{self.server.options.host}:{self.server.grpc_port}"

    @property
    def rest_url(self):
        return f"http://{self.server.options.host}:{self.server.rest_port}"

    def stop(self):
        if not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_in_thread(options):
    return BackgroundServer(options)
