"""Models, their version directories, and the load/unload lifecycle TF Serving follows.

Each model has a base path whose integer-named subdirectories are versions. A directory
counts only once it holds `saved_model.pb` (or `.pbtxt`), so a version being copied in
under a temporary name, or a half-written integer directory, is never picked up; the
rules live in `tfgen.versions`, which the export reader shares. Every
`poll_wait_seconds` the manager lists the base paths and, per model:

- loads each aspired version it has not loaded yet (version policy: latest N, all, or
  specific; only what its signatures call, `tfgen.serving.loader`), replaying
  `assets.extra/tf_serving_warmup_requests` before the version is marked AVAILABLE, so
  its first real request is not slow; by default the replay runs
  the signatures' quick instantiation (Grappler off), and once the pass's loads are
  done a background thread replays it again on the optimized one and switches the
  version to it (`tfgen.serving.instantiation`);
- only then unloads the versions no longer aspired (availability preserving: an old
  version stays while no newer aspired version is AVAILABLE);
- reports a version that fails to load as END with its error, and keeps serving the
  previous one (under a latest policy, the newest version that loads serves, even at
  startup); a failed version is retried when its directory changes.
"""

import concurrent.futures
import dataclasses
import logging
import os
import queue
import re
import threading
import time

import tensorflow as tf
from tensorflow.python.util import deprecation
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, prediction_log_pb2

from tfgen.errors import MissingPath, UserError
from tfgen.serving import loader
from tfgen.serving.errors import Code, ServingError, invalid_argument, not_found
from tfgen.serving.instantiation import SignatureFunction, quick_and_optimized
from tfgen.serving.ranges import input_ranges
from tfgen.serving.signatures import InputLimits, Signature, find_signature
from tfgen.versions import is_complete, parse_version, version_dirs

log = logging.getLogger("tfgen.serving")

State = get_model_status_pb2.ModelVersionStatus.State
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit
UNLOAD_GRACE_SECONDS = 0.5
# Models loading at once: one per core, at most 4. A load is CPU-bound (graph building
# under the GIL, then the warmup's TensorFlow calls, which release it), so a second core
# helps once the largest graphs start first: idle on 2 cores, the 14 shipped models were
# ready in 10.3-10.4 s two at a time against 13.1-13.2 s one at a time (docs/benchmarks.md).
MAX_CONCURRENT_LOADS = max(1, min(4, os.cpu_count() or 1))
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def check_model_name(name):
    """Model names become URL segments and metric labels: no paths, no surprises."""
    if not _MODEL_NAME.match(name or "") or ".." in name:
        raise UserError(
            f"invalid model name {name!r}: use letters, digits, '_', '-', '.', not '..'"
        )
    return name


@dataclasses.dataclass
class ModelConfig:
    """One model to serve, as a ModelServerConfig `config { ... }` entry."""

    name: str
    base_path: str
    policy: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_model_name(self.name)
        if self.policy not in ("latest", "all", "specific"):
            raise UserError(f"model {self.name}: unknown version policy {self.policy!r}")
        if self.policy == "latest" and self.num_versions < 1:
            raise UserError(f"model {self.name}: latest num_versions must be >= 1")
        if self.policy == "specific" and not self.versions:
            raise UserError(f"model {self.name}: specific policy lists no versions")

    def aspired(self, on_disk):
        """The versions this policy wants loaded, from the complete ones on disk."""
        on_disk = sorted(on_disk)
        if self.policy == "all":
            return on_disk
        if self.policy == "specific":
            return [v for v in on_disk if v in set(self.versions)]
        return on_disk[-self.num_versions :]


def _fingerprint(path):
    try:
        names = sorted(os.listdir(path))
        stats = [os.stat(os.path.join(path, n)).st_mtime_ns for n in names]
        return (tuple(names), tuple(stats))
    except OSError:
        return None


def _graph_bytes(config):
    """Size of the newest version's graph (0 if none): what orders concurrent loads."""
    on_disk = version_dirs(config.base_path)
    if not on_disk:
        return 0
    path = on_disk[max(on_disk)]
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        try:
            return os.path.getsize(os.path.join(path, name))
        except OSError:
            pass
    return 0


def _checked_records(records, path):
    """The records, or a ValueError naming `path` for a truncated or corrupt file."""
    try:
        yield from records
    except tf.errors.DataLossError as e:
        raise ValueError(f"{path}: {e.message}") from None


class ServableClosed(ServingError):
    """The version was unloaded between lookup and use; the caller looks up again."""

    def __init__(self):
        super().__init__(Code.UNAVAILABLE, "The servable is being unloaded")


class Servable:
    """One loaded version: its signatures, ready to run from any thread."""

    def __init__(self, name, version, path, limits, signatures_only=True):
        self.name = name
        self.version = version
        self.path = path
        self.meta_graph = loader.read_meta_graph(path)
        self.loaded = loader.load(path, self.meta_graph, signatures_only)
        self.signatures = {}
        ranges = input_ranges(path)
        _, optimized = quick_and_optimized()
        for key, signature_def in self.meta_graph.signature_def.items():
            if key in self.loaded.signatures:
                function = SignatureFunction(self.loaded.signatures[key], optimized)
                self.signatures[key] = Signature(key, signature_def, function, ranges)
        self._to_optimize = None  # warmup requests replayed on the quick instantiation
        self.limits = limits
        self._extras = {}  # per-servable state owned by the server (e.g. batch schedulers)
        self._extras_lock = threading.Lock()
        self._closed = False

    @property
    def signature_defs(self):
        return self.meta_graph.signature_def

    def signature_def_map(self):
        """All SignatureDefs (as GetModelMetadata reports them, init op included)."""
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        return signature_map

    def signature(self, name):
        return find_signature(self.signatures, name)

    def predict(self, request):
        """Run a PredictRequest directly (no batching): returns alias -> numpy array."""
        signature = self.signature(request.model_spec.signature_name)
        outputs = signature.resolve_outputs(list(request.output_filter))
        inputs = signature.decode_request_inputs(request.inputs, self.limits)
        return signature.run(inputs, outputs)

    def warmup_requests(self):
        """The PredictRequests of assets.extra/tf_serving_warmup_requests, checked as TF
        Serving checks them."""
        path = os.path.join(self.path, WARMUP_FILE)
        if not os.path.isfile(path):
            return []
        requests = []
        # The record reader itself: a tf.data pipeline costs ~25 ms of CPU per version.
        with deprecation.silence():
            records = tf.compat.v1.io.tf_record_iterator(path)
        for record in _checked_records(records, path):
            if len(requests) == MAX_WARMUP_RECORDS:
                raise ValueError(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at "
                    f"{path}"
                )
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            kind = entry.WhichOneof("log_type")
            if kind != "predict_log":
                raise ValueError(f"Unsupported log_type for warmup: {kind} in {path}")
            requests.append(entry.predict_log.request)
        return requests

    def warmup(self, quick=False):
        """Replay the warmup requests; any failure fails the load. With `quick`, on the
        quick instantiation of the signatures they name, until `optimize()`."""
        requests = self.warmup_requests()
        if quick and requests:
            self._to_optimize = requests
            self._use(quick_and_optimized()[0])
        for count, request in enumerate(requests, 1):
            try:
                self.predict(request)
            except ServingError as e:
                raise ValueError(f"warmup request {count} failed: {e.message}") from None
        return len(requests)

    def _use(self, options):
        """Serve the warmed signatures from the instantiation of `options`."""
        for name in {r.model_spec.signature_name for r in self._to_optimize}:
            self.signature(name).function.options = options

    @property
    def optimized(self):
        """False while a quick warmup's signatures still serve quick instantiations."""
        return self._to_optimize is None

    def optimize(self):
        """Replay the warmup requests on the optimized instantiation (TensorFlow's
        default), then serve from it. False if the version was unloaded meanwhile."""
        if self._to_optimize is None:
            return True
        optimized = quick_and_optimized()[1]
        for request in self._to_optimize:
            if self._closed:
                return False
            signature = self.signature(request.model_spec.signature_name)
            inputs = signature.decode_request_inputs(request.inputs, self.limits)
            signature.function.call_with(optimized, {a: tf.constant(v) for a, v in inputs.items()})
        self._use(optimized)
        self._to_optimize = None
        return True

    def extra(self, key, make):
        """The server's per-version state under `key`, made by `make()` on first use.

        Raises `ServableClosed` once the version is unloading, so nothing is created on
        a version that `close()` has already passed over.
        """
        with self._extras_lock:
            if self._closed:
                raise ServableClosed()
            if key not in self._extras:
                self._extras[key] = make()
            return self._extras[key]

    def close(self):
        with self._extras_lock:
            self._closed = True
            extras, self._extras = list(self._extras.values()), {}
        for extra in extras:
            close = getattr(extra, "close", None)
            if close:
                close()


@dataclasses.dataclass
class VersionStatus:
    version: int
    state: int = State.START
    error: ServingError = None
    servable: Servable = None
    fingerprint: object = None


class ModelManager:
    """Keeps the configured models' aspired versions loaded; answers lookups."""

    def __init__(self, configs, limits=InputLimits(), poll_wait_seconds=1.0,
                 warmup=True, on_load_attempt=None, max_concurrent_loads=MAX_CONCURRENT_LOADS,
                 quick_warmup=True, load_signatures_only=True):
        self._lock = threading.RLock()
        self._poll_lock = threading.Lock()
        self._configs = {}
        self._versions = {}  # name -> {version: VersionStatus}
        self.limits = limits
        self.poll_wait_seconds = poll_wait_seconds
        self.on_load_attempt = on_load_attempt
        self.do_warmup = warmup
        self.quick_warmup = quick_warmup
        self.load_signatures_only = load_signatures_only
        self.max_concurrent_loads = max_concurrent_loads
        self._loaded_quick = []  # servables to optimize once the poll pass's loads are done
        self._optimize_queue = queue.Queue()
        self._optimizer = None
        self._stop = threading.Event()
        self._thread = None
        self._warned_empty = set()
        self._warned_names = set()
        self.set_configs(configs, poll=False)

    # --- configuration and polling ---------------------------------------------------------

    def set_configs(self, configs, poll=True):
        """Replace the model list (HandleReloadConfigRequest); removed models unload."""
        configs = list(configs)
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise UserError(f"duplicate model names in config: {sorted(names)}")
        with self._lock:
            old = self._configs
            removed = set(old) - set(names)
            # A model whose base path changed is a different model under the same name.
            moved = {c.name for c in configs if c.name in old and old[c.name].base_path != c.base_path}
            self._configs = {c.name: c for c in configs}
            for name in names:
                self._versions.setdefault(name, {})
        for name in removed | moved:
            self._unload_model(name)
        with self._lock:
            for name in moved:
                self._versions[name] = {}
        if poll:
            self.poll_once()
            self.check_labels()

    def check_labels(self):
        """TF Serving's rule: a label may only name a version that is AVAILABLE."""
        for config in self.configs:
            available = self._available_versions(config.name) or []
            for label, version in sorted(config.labels.items()):
                if version not in available:
                    raise ServingError(
                        Code.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model "
                        f"{config.name}, which is not currently available for inference",
                    )

    @property
    def configs(self):
        with self._lock:
            return list(self._configs.values())

    def start(self):
        """Load every model once (blocking), then keep polling in a thread."""
        for config in self.configs:
            if version_dirs(config.base_path) is None:
                raise MissingPath(
                    f"model {config.name}: base path {config.base_path} does not exist"
                )
        self.poll_once()
        try:
            self.check_labels()
        except ServingError as e:
            raise UserError(e.message) from None
        if self.poll_wait_seconds and self.poll_wait_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="model-poll", daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self._optimize_queue.put(None)
        for name in list(self._versions):
            self._unload_model(name)

    def _poll_loop(self):
        while not self._stop.wait(self.poll_wait_seconds):
            try:
                self.poll_once()
            except Exception:  # keep polling whatever one pass hit
                log.exception("polling model base paths failed")

    def poll_once(self):
        """One pass over every model; models load (and warm up) concurrently, each
        model's versions in order."""
        with self._poll_lock:
            try:
                self._poll_models(self.configs)
            finally:
                self._optimize_loaded()

    def _poll_models(self, configs):
        if len(configs) <= 1 or self.max_concurrent_loads <= 1:
            for config in configs:
                self._poll_model(config)
            return
        workers = min(len(configs), self.max_concurrent_loads)
        # Longest first, so the last load to finish starts early: a load's cost grows
        # with its graph (the shipped models' largest saved_model.pb are its slowest).
        configs = sorted(configs, key=_graph_bytes, reverse=True)
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="load") as pool:
            for done in [pool.submit(self._poll_model, c) for c in configs]:
                done.result()

    def _optimize_loaded(self):
        """Hand this pass's quick-warmed versions to the optimizer thread, which runs
        after the loads so it never delays one (one version at a time, in load order)."""
        with self._lock:
            servables, self._loaded_quick = self._loaded_quick, []
        if not servables:
            return
        if self._optimizer is None:
            self._optimizer = threading.Thread(target=self._optimize_loop, name="optimize",
                                               daemon=True)
            self._optimizer.start()
        for servable in servables:
            self._optimize_queue.put(servable)

    def _optimize_loop(self):
        while (servable := self._optimize_queue.get()) is not None:
            start = time.monotonic()
            try:
                if servable.optimize():
                    log.info("Optimized servable version {name: %s version: %d} in %.1fs: it "
                             "serves its Grappler-optimized signatures", servable.name,
                             servable.version, time.monotonic() - start)
            except Exception:  # keep serving the quick instantiation
                log.exception("Optimizing servable version {name: %s version: %d} failed; it "
                              "keeps serving unoptimized signatures", servable.name,
                              servable.version)

    def _poll_model(self, config):
        on_disk = version_dirs(config.base_path)
        if on_disk is None:
            log.warning("model %s: base path %s not found; keeping loaded versions",
                        config.name, config.base_path)
            return
        self._warn_not_versions(config)
        statuses = self._versions.setdefault(config.name, {})
        # Under a latest policy a version that failed to load (and is unchanged since)
        # does not count: the newest version that loads serves, and a failed new
        # version never displaces the one already serving. Each failure recomputes.
        for _ in range(len(on_disk) + 1):
            failed = {
                v for v, s in statuses.items()
                if s.error is not None and v in on_disk
                and s.fingerprint == _fingerprint(on_disk[v])
            }
            if config.policy == "latest":
                aspired = config.aspired([v for v in on_disk if v not in failed])
            else:
                aspired = config.aspired(on_disk)
            if not self._load_aspired(config, on_disk, aspired, statuses):
                break
        if not aspired:
            self._warn_no_versions(config)
        else:
            self._warned_empty.discard(config.name)
        # Unload what is no longer aspired, but never the last AVAILABLE version unless
        # an aspired one is AVAILABLE to take over.
        available_aspired = [
            v for v in aspired if statuses.get(v) and statuses[v].state == State.AVAILABLE
        ]
        for version, status in list(statuses.items()):
            if version in aspired or status.state != State.AVAILABLE:
                continue
            if available_aspired:
                self._unload(config.name, version)

    def _warn_not_versions(self, config):
        """One warning per directory that looks like a version but is not one: Unicode
        digits (`²`, which str.isdigit() accepts) or a number beyond int64."""
        try:
            names = os.listdir(config.base_path)
        except OSError:
            return
        for name in names:
            key = (config.name, name)
            if name.isdigit() and parse_version(name) is None and key not in self._warned_names:
                self._warned_names.add(key)
                log.warning("model %s: ignoring %r under %s: a version is ASCII digits within "
                            "int64", config.name, name[:40], config.base_path)

    def _warn_no_versions(self, config):
        """Once per model until a version appears (TF Serving says it every poll)."""
        if config.name in self._warned_empty:
            return
        self._warned_empty.add(config.name)
        hint = ""
        if is_complete(config.base_path):
            hint = (f"; {config.base_path} holds saved_model.pb itself: the base path is the "
                    "directory above the numbered version directories")
        log.warning("No versions of servable %s found under base path %s; it is not yet "
                    "available and loads when a version appears%s",
                    config.name, config.base_path, hint)

    def _load_aspired(self, config, on_disk, aspired, statuses):
        """Load the aspired versions not loaded yet; True if one of them failed."""
        any_failed = False
        # Newest first, so a latest-N policy serves the newest version soonest.
        for version in sorted(aspired, reverse=True):
            current = statuses.get(version)
            fingerprint = _fingerprint(on_disk[version])
            if current and current.state in (State.AVAILABLE, State.LOADING):
                continue
            # An UNLOADING version aspired again (a model removed and re-added by a
            # reload) loads afresh now, beside the copy still closing: a reload answers
            # OK only once its models serve, as TF Serving's does.
            if current and current.error is not None and current.fingerprint == fingerprint:
                continue  # failed before and unchanged on disk
            if not self._load(config.name, version, on_disk[version], fingerprint):
                any_failed = True
        return any_failed

    def _load(self, name, version, path, fingerprint):
        status = VersionStatus(version, State.LOADING, fingerprint=fingerprint)
        with self._lock:
            self._versions.setdefault(name, {})[version] = status
        log.info("Loading servable: {name: %s version: %d} from %s", name, version, path)
        start = time.monotonic()
        try:
            servable = Servable(name, version, path, self.limits, self.load_signatures_only)
            if self.do_warmup:
                n = servable.warmup(quick=self.quick_warmup)
                if n:
                    log.info("Finished reading warmup data for model %s version %d: %d "
                             "warmup records", name, version, n)
        except Exception as e:  # any failure: report it, keep serving the old version
            message = f"Loading servable: {{name: {name} version: {version}}} failed: {e}"
            log.error(message)
            if self.on_load_attempt:
                self.on_load_attempt(path, False)
            code = e.code if isinstance(e, ServingError) else Code.UNKNOWN
            with self._lock:
                status.state = State.END
                status.error = ServingError(code, message)
            return False
        if self.on_load_attempt:
            self.on_load_attempt(path, True)
        with self._lock:
            status.servable = servable
            status.state = State.AVAILABLE
            if not servable.optimized:
                self._loaded_quick.append(servable)
        log.info("Successfully loaded servable version {name: %s version: %d} in %.1fs",
                 name, version, time.monotonic() - start)
        return True

    def _unload(self, name, version):
        with self._lock:
            status = self._versions.get(name, {}).get(version)
            if status is None or status.servable is None:
                return
            servable = status.servable
            status.state = State.UNLOADING
        log.info("Unloading servable version {name: %s version: %d}", name, version)
        # Requests already holding the servable finish; its queues drain in close().
        threading.Thread(target=self._finish_unload, args=(status, servable), daemon=True).start()

    def _finish_unload(self, status, servable):
        try:
            # Requests that looked the version up just before UNLOADING still submit.
            time.sleep(UNLOAD_GRACE_SECONDS)
            servable.close()
        finally:
            with self._lock:
                status.servable = None
                status.state = State.END

    def _unload_model(self, name):
        for version in list(self._versions.get(name, {})):
            self._unload(name, version)

    # --- lookups -----------------------------------------------------------------------

    def _available_versions(self, name):
        with self._lock:
            statuses = self._versions.get(name)
            if statuses is None:
                return None
            return sorted(v for v, s in statuses.items() if s.state == State.AVAILABLE)

    def servable(self, name, version=None, label=None):
        """The Servable for a ModelSpec, or TF Serving's NOT_FOUND/INVALID_ARGUMENT."""
        with self._lock:
            config = self._configs.get(name)
            statuses = self._versions.get(name, {}) if config else {}
            if label:
                if version is not None:
                    raise invalid_argument(
                        f"Both model version ({version}) and model version label ({label}) "
                        "cannot be supplied."
                    )
                if config is None or label not in config.labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = config.labels[label]
            if version is not None:
                status = statuses.get(version)
                if status is None or status.state != State.AVAILABLE:
                    raise not_found(f"Servable not found for request: Specific({name}, {version})")
                return status.servable
            available = [v for v, s in statuses.items() if s.state == State.AVAILABLE]
            if not available:
                raise not_found(f"Servable not found for request: Latest({name})")
            return statuses[max(available)].servable

    def version_status(self, name, version=None):
        """[(version, state, error)] as GetModelStatus reports them."""
        with self._lock:
            statuses = self._versions.get(name) if name in self._configs else None
            if version is not None:
                status = (statuses or {}).get(version)
                if status is None:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [(version, status.state, status.error)]
            if not statuses:
                raise not_found(f"Could not find any versions of model {name}")
            return [(v, s.state, s.error) for v, s in sorted(statuses.items())]

    def unavailable_models(self):
        """Configured models with no AVAILABLE version (yet)."""
        with self._lock:
            return sorted(
                name for name in self._configs
                if not any(s.state == State.AVAILABLE for s in self._versions.get(name, {}).values())
            )

    def ready(self):
        """True when every configured model has an AVAILABLE version."""
        with self._lock:
            return all(
                any(s.state == State.AVAILABLE for s in self._versions.get(name, {}).values())
                for name in self._configs
            )

    def model_names(self):
        with self._lock:
            return sorted(self._configs)
