"""The one HTTP client for an MLflow tracking server: the logging path and the CLI share it.

Built on ``requests`` alone, so neither the training process nor ``azml`` pays MLflow's import
(1.1-1.7 s, ~200 MB) to talk to a server. It honours everything MLflow's own client honours for
a server:

* ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (or ``~/.mlflow/credentials``):
  basic auth, which wins over ``MLFLOW_TRACKING_TOKEN`` (bearer), as in MLflow;
* ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH``,
  ``MLFLOW_TRACKING_CLIENT_CERT_PATH``; user info in the URI and the usual proxy variables
  (``requests`` reads them, as it does for MLflow).

What only MLflow's code can do (an auth plugin named by ``MLFLOW_TRACKING_AUTH``, AWS SigV4,
a workspace header, request-header or request-auth providers installed as entry points) is
detected from the environment and package metadata without importing MLflow; then every
request goes through MLflow's own ``http_request`` (its retries off) so those apply.

One timeout policy: ``AZML_HTTP_TIMEOUT`` seconds per request if set, else 30 s on the logging
path (a slow server's answer is worth waiting for; the sender retries) and 10 s for the CLI (a
command against a server that accepts connections and never answers must end within 15 s).
That is a deadline on the whole request, connect, headers and body (``Deadline``), not on each
read: ``requests``' own timeout bounds every socket read, so a server trickling a byte a second
held a request (and an `azml` command) for as long as it went on. A body being sent or
streamed in adds its size at ``MIN_TRANSFER_RATE`` to the deadline, so a large artifact over a
slow link still goes through. Every request is tried once: retrying is the caller's policy (the
sender's backoff; the CLI says so in one line). Errors name the endpoint and never a credential.
"""
from __future__ import annotations

import configparser
import contextlib
import functools
import os
import socket
import threading
import time
from urllib.parse import urlsplit

from .._config import Settings
from .._consts import CLI_HTTP_TIMEOUT, DEFAULT_HTTP_TIMEOUT, MIN_TRANSFER_RATE
from .._redact import redact_text
from .stores.base import StoreError

LOGGING_TIMEOUT = DEFAULT_HTTP_TIMEOUT  # seconds per request of the logging path
CLI_TIMEOUT = CLI_HTTP_TIMEOUT  # seconds per request of an `azml` command
# Entry-point groups MLflow loads request plugins from (mlflow/tracking/request_header/
# registry.py and mlflow/tracking/request_auth/registry.py).
PLUGIN_GROUPS = ("mlflow.request_header_provider", "mlflow.request_auth_provider")
# Settings whose effect only MLflow's request code implements.
MLFLOW_ONLY_SETTINGS = ("MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4", "MLFLOW_WORKSPACE")
API = "/api/2.0/mlflow/"


def request_timeout(cli: bool = False, settings: Settings | None = None) -> float:
    """Seconds one request may take: ``AZML_HTTP_TIMEOUT`` (from ``settings``, else read now:
    an ``azml`` command fails on a bad value, a script warns), else the path's default."""
    if settings is None:
        settings = Settings.from_env(["AZML_HTTP_TIMEOUT"], strict=cli)
    return settings.http_timeout or (CLI_TIMEOUT if cli else LOGGING_TIMEOUT)


def mlflow_request_reason() -> str | None:
    """Why requests must go through MLflow's own code (a plugin or setting only it knows),
    or None. Read from the environment and package metadata: MLflow is not imported."""
    for name in MLFLOW_ONLY_SETTINGS:
        if os.environ.get(name, "").strip() and os.environ.get(name, "").lower() != "false":
            return f"{name} is set"
    from importlib.metadata import entry_points

    for group in PLUGIN_GROUPS:
        try:
            found = [ep.name for ep in entry_points(group=group)]
        except Exception:  # noqa: BLE001 - a broken package's metadata: MLflow would skip it too
            found = []
        if found:
            return f"{group} plugin {found[0]!r} installed"
    return None


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("true", "1")


def _file_credentials() -> tuple[str | None, str | None]:
    """``[mlflow]`` username/password from ``~/.mlflow/credentials``, as MLflow reads them."""
    path = os.path.expanduser("~/.mlflow/credentials")
    if not os.path.exists(path):
        return None, None
    config = configparser.ConfigParser()
    try:
        config.read(path)
    except configparser.Error:
        return None, None
    if "mlflow" not in config:
        return None, None
    section = config["mlflow"]
    return section.get("mlflow_tracking_username"), section.get("mlflow_tracking_password")


class RestClient:
    """Requests to one tracking server; ``call`` for its JSON API, ``request`` for the rest."""

    def __init__(self, uri: str, timeout: float | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.timeout = timeout if timeout is not None else LOGGING_TIMEOUT
        self.via_mlflow = mlflow_request_reason()  # None: plain requests
        env = os.environ.get
        file_user, file_password = _file_credentials()
        user = env("MLFLOW_TRACKING_USERNAME") or file_user
        password = env("MLFLOW_TRACKING_PASSWORD") or file_password
        self._headers = {"User-Agent": "azml-compat"}
        # A new connection per request on plain http. MLflow's default server (uvicorn)
        # answers a kept-alive request ~40 ms late, between its headers and its body (delayed
        # ACK against Nagle): measured here 48-52 ms per request kept alive, 7-10 ms on a new
        # connection, and no difference on gunicorn, which closes every connection anyway. A
        # script's run is ~5 requests in a row. Over https the handshake costs more than the
        # stall, and a TLS proxy in front of uvicorn usually hides it: kept alive there.
        self._one_per_connection = urlsplit(self.uri).scheme == "http"
        if self._one_per_connection:
            self._headers["Connection"] = "close"
        self._auth = None
        if user and password:
            self._auth = (user, password)
        elif env("MLFLOW_TRACKING_TOKEN"):
            self._headers["Authorization"] = "Bearer " + env("MLFLOW_TRACKING_TOKEN")
        server_cert = env("MLFLOW_TRACKING_SERVER_CERT_PATH")
        self._verify = False if _truthy("MLFLOW_TRACKING_INSECURE_TLS") else server_cert or True
        self._cert = env("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None
        self._local = threading.local()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"RestClient({redact_text(self.uri)!r})"

    def _session(self):
        """One ``requests`` session per process: a forked child makes its own connections."""
        session = getattr(self._local, "session", None)
        if session is None or self._pid != os.getpid():
            import requests

            self._pid = os.getpid()
            session = requests.Session()
            kind = _closing_adapter() if self._one_per_connection else _deadline_adapter()
            adapter = kind(pool_maxsize=16, max_retries=0)  # retries are the caller's
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update(self._headers)
            session.auth = self._auth
            session.verify = self._verify
            session.cert = self._cert
            self._local.session = session
        return session

    def warm_up(self) -> None:
        """Do now, without the network, the imports a first request would do lazily
        (``requests``, its adapters, a prepared request, the ``idna`` codec ``getaddrinfo``
        loads for a host name). The sender calls it while a fork still waits for it
        (``ForkGate``): a child forked in the middle of one of those imports would inherit the
        module half-initialised for good ("partially initialized module 'requests'"), and
        after this no request of ours imports anything a fork has to wait for."""
        if self.via_mlflow:
            return
        import requests

        self._session()
        requests.Request("POST", self.uri + API + "runs/get", json={}).prepare()
        "localhost".encode("idna")

    def request(self, method: str, endpoint: str, *, timeout: float | None = None,
                headers: dict | None = None, **kwargs):
        """One try of ``method endpoint`` (a path under the server); the raw response, read
        whole within the deadline (``timeout``, plus the time a body given as ``data`` takes
        at ``MIN_TRANSFER_RATE``).

        Network errors are ``requests``' own (the retry policy reads them as transient); a
        deadline that ran out is ``requests.exceptions.ReadTimeout``."""
        timeout = self.timeout if timeout is None else timeout
        if self.via_mlflow:
            return self._mlflow_request(method, endpoint, timeout, headers, **kwargs)
        seconds = timeout + _body_size(kwargs.get("data")) / MIN_TRANSFER_RATE
        with Deadline(seconds, f"{method} {endpoint}"):
            return self._session().request(method, self.uri + endpoint, timeout=timeout,
                                           headers=headers, **kwargs)

    @contextlib.contextmanager
    def streamed(self, method: str, endpoint: str, *, timeout: float | None = None, **kwargs):
        """``(response, chunks)`` of a request whose body the caller reads in pieces:
        ``chunks()`` yields them, each moving the deadline on by its size at
        ``MIN_TRANSFER_RATE``, so a large download goes on and a trickling one ends."""
        timeout = self.timeout if timeout is None else timeout
        if self.via_mlflow:
            with self._mlflow_request(method, endpoint, timeout, None, stream=True,
                                      **kwargs) as response:
                yield response, lambda: response.iter_content(1 << 20)
            return
        with Deadline(timeout, f"{method} {endpoint}") as deadline:
            with self._session().request(method, self.uri + endpoint, timeout=timeout,
                                         stream=True, **kwargs) as response:
                def chunks():
                    for chunk in response.iter_content(1 << 20):
                        deadline.extend(len(chunk) / MIN_TRANSFER_RATE)
                        yield chunk

                yield response, chunks

    def _mlflow_request(self, method, endpoint, timeout, headers, **kwargs):
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        return http_request(get_default_host_creds(self.uri), endpoint, method, max_retries=0,
                            backoff_factor=0, backoff_jitter=0, raise_on_status=False,
                            timeout=timeout, extra_headers=headers, **kwargs)

    def call(self, endpoint: str, method: str = "POST", body: dict | None = None,
             timeout: float | None = None) -> dict:
        """The JSON answer of an MLflow API call (``runs/get``, ...); StoreError unless 200."""
        path = endpoint if endpoint.startswith("/") else API + endpoint
        kwargs = {"json": body} if method == "POST" else {"params": body}
        response = self.request(method, path, timeout=timeout, **kwargs)
        if response.status_code != 200:
            raise StoreError.from_response(response, path)
        return response.json() if response.content else {}


def _body_size(data) -> int:
    """Bytes of a request body given as bytes or an open file (0 if neither)."""
    if isinstance(data, (bytes, bytearray, str)):
        return len(data)
    try:
        return os.fstat(data.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return 0


_current = threading.local()  # .deadline: the Deadline of this thread's request, if any


class Deadline:
    """The whole of one request, bounded: past ``seconds`` (moved on by ``extend``) every
    connection the request used on this thread is shut down, which wakes a read or write
    blocked on it at once, and the request fails with ``ReadTimeout``.

    A socket timeout cannot do this: it restarts at every byte received. The watcher is one
    short-lived thread per request (stopped and joined when the request ends: 0.3 ms measured on
    a busy 2-core machine, against a request's 7-50 ms on a local server); the connections
    register themselves (``_watched``), so nothing of urllib3's is patched."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds, self.what = seconds, what
        self._at = time.monotonic() + seconds
        self._connections: list = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.expired = False

    def extend(self, seconds: float) -> None:
        self.seconds += seconds
        self._at += seconds

    def watch(self, connection) -> None:
        with self._lock:
            if connection not in self._connections:
                self._connections.append(connection)
            expired = self.expired
        if expired:
            _shut(connection)

    def __enter__(self) -> Deadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self
        self._watcher = threading.Thread(target=self._watch_clock, name="azml-deadline",
                                         daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        _current.deadline = self._outer
        self._done.set()
        self._watcher.join()
        if self.expired and not isinstance(exc, GeneratorExit):
            # Even with an answer: a header cut off by the shutdown parses as a short one.
            import requests

            raise requests.exceptions.ReadTimeout(
                f"{self.what}: no whole answer within {self.seconds:g} s: Read timed out "
                f"(read timeout={self.seconds:g}, AZML_HTTP_TIMEOUT)") from exc

    def _watch_clock(self) -> None:
        while not self._done.wait(max(0.0, self._at - time.monotonic())):
            if time.monotonic() >= self._at:
                with self._lock:
                    self.expired = True
                    connections = list(self._connections)
                for connection in connections:
                    _shut(connection)
                return


def _shut(connection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _watched(cls):
    """``cls`` (a urllib3 connection class) registering itself with the thread's deadline."""

    class Watched(cls):
        def connect(self):
            deadline = getattr(_current, "deadline", None)
            super().connect()
            if deadline is not None:
                deadline.watch(self)  # shut at once if it ran out during the connect

        def request(self, *args, **kwargs):
            deadline = getattr(_current, "deadline", None)
            if deadline is not None:
                deadline.watch(self)
            return super().request(*args, **kwargs)

    Watched.__name__ = Watched.__qualname__ = "Watched" + cls.__name__
    return Watched


@functools.lru_cache(maxsize=None)
def _deadline_adapter():
    """The adapter class whose connections obey ``Deadline`` (made on first use: ``requests``
    is imported then)."""
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Pool(HTTPConnectionPool):
        ConnectionCls = _watched(HTTPConnectionPool.ConnectionCls)

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = _watched(HTTPSConnectionPool.ConnectionCls)

    pools = {"http": Pool, "https": TLSPool}

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy, **kwargs):
            manager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    return DeadlineAdapter


@functools.lru_cache(maxsize=None)
def _closing_adapter():
    """The adapter class for plain http (made on first use: ``requests`` is imported then)."""

    class ClosingAdapter(_deadline_adapter()):
        """Closes each connection once its answer is read. Asking with ``Connection: close``
        is not enough: a server need not say it will close (RFC 9112 makes that a SHOULD;
        Python's http.server does not), and a pooled connection reused in the moment before
        its close arrives fails with "Remote end closed connection without response"."""

        def send(self, request, stream=False, **kwargs):
            response = super().send(request, stream=stream, **kwargs)
            if not stream:
                connection = response.raw.connection
                response.content  # noqa: B018 - read whole: urllib3 then pools the connection
                if connection is not None:
                    connection.close()  # the pool opens a new one for the next request
            return response

    return ClosingAdapter


ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


def proxied_root(client: RestClient, artifact_uri: str):
    """``(client, root)`` when ``artifact_uri`` names artifacts a server proxies as plain HTTP
    (``mlflow-artifacts:`` on ``client``'s server, or that API's URL on another), else None:
    only MLflow's artifact repositories reach the others (S3, Azure Blob, ...)."""
    parts = urlsplit(artifact_uri)
    if parts.scheme == "mlflow-artifacts":
        if parts.netloc and parts.netloc != urlsplit(client.uri).netloc:
            return None  # another host: let MLflow resolve it
        return client, parts.path.strip("/")
    if parts.scheme in ("http", "https") and ARTIFACTS_API in parts.path:
        base, root = artifact_uri.split(ARTIFACTS_API, 1)
        return RestClient(base, timeout=client.timeout), root.strip("/")
    return None
