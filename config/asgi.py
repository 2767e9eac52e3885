"""The project's ASGI application: WebSocket routes, and Django for HTTP.

`make run` serves HTTP through gunicorn's threads (`config.wsgi`) and hands WebSocket
upgrades to an asyncio loop in each worker process (`config.gunicorn_worker`,
`config.websocket_bridge`), which calls this application with `websocket` scopes only.
A deployment that prefers a pure ASGI server can serve everything with it instead:
`uvicorn config.asgi:application` (uvicorn is not a dependency of this project; install it
there). Then `http` scopes go to Django's ASGI handler and `lifespan` is acknowledged.

WebSocket routes are looked up by exact path; a route's module is imported at its first
connection. A path with no route, or a route whose module is not installed, is refused
before the handshake completes: a close before `websocket.accept` becomes an HTTP 403
answer to the upgrade request (the ASGI spec), so a client sees a refused handshake, not the
close code (4404 for an unknown path, as docs/STREAMING.md lists).
"""

from __future__ import annotations

import importlib
import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

logger = logging.getLogger("voiceprint.websocket")

#: path -> the module whose `application` serves it.
WEBSOCKET_ROUTES = {"/v1/voiceprint/stream": "voiceprint.streaming.asgi"}
UNKNOWN_PATH = 4404
UNAVAILABLE = 1011

_loaded: dict[str, object] = {}


async def application(scope, receive, send) -> None:
    if scope["type"] == "http":
        await django_application(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket_application(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")


async def websocket_application(scope, receive, send) -> None:
    module = WEBSOCKET_ROUTES.get(scope["path"])
    if module is None:
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": UNKNOWN_PATH, "reason": "no such path"})
        return
    route = _route(module)
    if route is None:
        await receive()
        await send({"type": "websocket.close", "code": UNAVAILABLE, "reason": "unavailable"})
        return
    await route(scope, receive, send)


def _route(module: str):
    """The module's `application`, imported once; None while the module does not exist."""
    if module not in _loaded:
        try:
            _loaded[module] = importlib.import_module(module).application
        except ModuleNotFoundError as exc:
            if not (exc.name and f"{module}.".startswith(f"{exc.name}.")):
                raise  # the module exists but something it imports does not: a real error
            logger.warning("websocket route module %s is not installed", module)
            return None
    return _loaded[module]


async def _lifespan(receive, send) -> None:
    """Nothing to start or stop: the processes set themselves up on import."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
