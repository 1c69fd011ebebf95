"""A loopback endpoint speaking the Lambda Invoke API, running the real `lambda/handler.py`.

`POST /2015-03-31/functions/{name}/invocations` as boto3's Lambda client sends it. The
functions it knows:

- `imagify-thumbnails` (FUNCTION): the real handler, with the environment the deployed
  function would have (IMAGIFY_S3_ENDPOINT_URL = the moto server). It is handed that
  environment as a mapping (`handler.handle(event, environ)`, which the Lambda entry point
  calls with `os.environ`) rather than by changing this process's os.environ under other tests.
- `failing` (FAILING): raises, so the answer carries `X-Amz-Function-Error: Unhandled`.
- `slow` (SLOW): waits SLOW_SECONDS before running the real handler, longer than a
  client's short read timeout.
- `timing-out` (TIMING_OUT): answers as Lambda does when a function runs past its own
  configured timeout (`Sandbox.Timedout`, "Task timed out after 3.00 seconds").

Any other name is a 404 ResourceNotFoundException, as from AWS. Use the `lambda_endpoint`
fixture: `from tests.integration.lambda_endpoint import lambda_endpoint`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.integration.services import moto_server  # noqa: F401  (fixture)

HANDLER_PATH = Path(__file__).resolve().parents[2] / "lambda" / "handler.py"
FUNCTION = "imagify-thumbnails"
FAILING = "failing"
SLOW = "slow"
TIMING_OUT = "timing-out"
SLOW_SECONDS = 5.0
ACCOUNT = "123456789012"
_PATH_PREFIX = "/2015-03-31/functions/"


@cache
def load_handler() -> ModuleType:
    """`lambda/handler.py` as a module (`lambda` is a keyword, so it is no package)."""
    spec = importlib.util.spec_from_file_location("imagify_lambda_handler", HANDLER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class FunctionCrashed(RuntimeError):
    """What the `failing` function raises."""


class FunctionTimedOut(Exception):
    """What the `timing-out` function raises: the service answers Sandbox.Timedout."""


class LambdaEndpoint:
    def __init__(self, environment: Mapping[str, str]) -> None:
        self.environment = dict(environment)
        self._stopping = threading.Event()
        handler = load_handler()

        def real(event: Any) -> Any:
            return handler.handle(event, self.environment)

        def failing(event: Any) -> Any:
            raise FunctionCrashed("the render worker crashed (the test function 'failing')")

        def timing_out(event: Any) -> Any:
            raise FunctionTimedOut("Task timed out after 3.00 seconds")

        def slow(event: Any) -> Any:
            self._stopping.wait(SLOW_SECONDS)
            return real(event)

        self.functions: dict[str, Callable[[Any], Any]] = {
            FUNCTION: real,
            FAILING: failing,
            SLOW: slow,
            TIMING_OUT: timing_out,
        }
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def invoke(self, name: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one invocation, as the Lambda service answers."""
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id, "Content-Type": "application/json"}
        function = self.functions.get(name)
        if function is None:
            arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
            headers["x-amzn-ErrorType"] = "ResourceNotFoundException"
            return 404, headers, _json({"Type": "User", "Message": f"Function not found: {arn}"})
        try:
            event = json.loads(body) if body else {}
        except ValueError as error:
            headers["x-amzn-ErrorType"] = "InvalidRequestContentException"
            return (
                400,
                headers,
                _json(
                    {"Type": "User", "message": f"Could not parse request body into json: {error}"}
                ),
            )
        headers["X-Amz-Executed-Version"] = "$LATEST"
        try:
            result = function(event)
        except Exception as error:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return (
                200,
                headers,
                _json(
                    {
                        "errorMessage": (f"RequestId: {request_id} Error: {error}"
                                         if isinstance(error, FunctionTimedOut) else str(error)),
                        "errorType": ("Sandbox.Timedout" if isinstance(error, FunctionTimedOut)
                                      else type(error).__name__),
                        "requestId": request_id,
                        "stackTrace": traceback.format_tb(error.__traceback__),
                    }
                ),
            )
        return 200, headers, _json(result)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _function_name(path: str) -> str | None:
    """The name in `/2015-03-31/functions/{name, ARN or partial ARN}/invocations`."""
    path = urlsplit(path).path
    if not (path.startswith(_PATH_PREFIX) and path.endswith("/invocations")):
        return None
    name = unquote(path[len(_PATH_PREFIX) : -len("/invocations")])
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    return name.split(":", 1)[0]  # a :qualifier


def _handler_class(endpoint: LambdaEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            name = _function_name(self.path)
            if name is None:
                self._answer(
                    404, {"x-amzn-ErrorType": "UnknownOperationException"}, b'{"message":"unknown"}'
                )
                return
            invocation = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if invocation == "DryRun" and name in endpoint.functions:
                self._answer(204, {}, b"")
                return
            self._answer(*endpoint.invoke(name, body))

        def _answer(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its read timeout): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def lambda_endpoint(moto_server: str) -> Iterator[str]:
    """The URL of a loopback Lambda endpoint whose functions use S3 on the moto server."""
    endpoint = LambdaEndpoint({"IMAGIFY_S3_ENDPOINT_URL": moto_server})
    endpoint.start()
    try:
        yield endpoint.url
    finally:
        endpoint.stop()
