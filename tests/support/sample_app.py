"""A small FunctionApp that reports what the local host handed it, for the host's own tests.

Each function answers with what it received (method, URL, route and query parameters,
headers, body as hex) or with exactly the status, mimetype, headers or bytes a test asks for,
so the tests can check both directions of the host's translation.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

BINARY = bytes(range(256)) + b"\xff\xfe\x00\x80 not utf-8"
SECRET_IN_ERROR = "do-not-leak-this-exception-text"
SLOW_SECONDS = 0.2

_lock = threading.Lock()


@functools.cache
def _built() -> tuple[func.Function, ...]:
    return tuple(app.get_functions())


def functions() -> tuple[func.Function, ...]:
    """The app's functions, built once (``get_functions()`` refuses a second call)."""
    with _lock:
        return _built()


def echo_body(req: func.HttpRequest, function: str) -> dict[str, object]:
    return {
        "function": function,
        "method": req.method,
        "url": req.url,
        "route": dict(req.route_params),
        "params": dict(req.params),
        "headers": dict(req.headers),
        "body_hex": req.get_body().hex(),
    }


def _json(body: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.route(route="echo/{first}")  # no methods: every method
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _json(echo_body(req, "echo"))


@app.route(route="echo/{first}/{second}")
def echo_pair(req: func.HttpRequest) -> func.HttpResponse:
    return _json(echo_body(req, "echo_pair"))


@app.route(route="items/{name}", methods=["GET"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _json(echo_body(req, "item_by_name"))


@app.route(route="items/new", methods=["GET"])  # after the parameter: the literal still wins
def item_new(req: func.HttpRequest) -> func.HttpResponse:
    return _json(echo_body(req, "item_new"))


@app.route(route="only-post", methods=["POST"])
def only_post(req: func.HttpRequest) -> func.HttpResponse:
    return _json(echo_body(req, "only_post"), status=201)


@app.function_name("greeting")
@app.route(
    route="greeting",
    methods=["GET", "HEAD"],
    trigger_arg_name="request",
    auth_level=func.AuthLevel.FUNCTION,  # logged, not enforced
)
def greeting(request: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hello, wheelvault\n", headers={"X-Greeting": "yes"})


@app.route(route="respond", methods=["GET"])
def respond(req: func.HttpRequest) -> func.HttpResponse:
    """Status, mimetype, charset and an explicit Content-Type header as the query asks."""
    headers = {"X-Custom": "custom value", "Cache-Control": "no-store"}
    if "content_type" in req.params:
        headers["Content-Type"] = req.params["content_type"]
    return func.HttpResponse(
        req.params.get("body", "body text"),
        status_code=int(req.params.get("status", "200")),
        mimetype=req.params.get("mimetype"),
        charset=req.params.get("charset"),
        headers=headers,
    )


@app.route(route="cookies", methods=["GET"])
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("", status_code=204)
    response.headers.add("Set-Cookie", "a=1")
    response.headers.add("Set-Cookie", "b=2")
    return response


@app.route(route="binary", methods=["GET"])
def binary(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(BINARY, mimetype="application/octet-stream")


@app.route(route="boom", methods=["GET", "POST"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError(SECRET_IN_ERROR)


@app.route(route="wrong-result", methods=["GET"])
def wrong_result(req: func.HttpRequest) -> func.HttpResponse:
    return 42  # type: ignore[return-value]  # deliberately not an HttpResponse


@app.route(route="async-echo/{name}", methods=["POST"])
async def async_echo(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    body = echo_body(req, "async_echo")
    body["loop"] = id(asyncio.get_running_loop())
    return _json(body)


@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(SLOW_SECONDS)
    return func.HttpResponse("done")


@app.route(route="plain-text", methods=["GET"])
def plain_text(req: func.HttpRequest) -> str:
    return "a plain string result"


@app.route(route="bad/{value:regex(^a$)}", methods=["GET"])
def bad_template(req: func.HttpRequest) -> func.HttpResponse:
    """A template the local host does not support: listed as a problem, never served."""
    return func.HttpResponse("unreachable")
