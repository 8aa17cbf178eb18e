"""A client's disconnect cancels its request at every phase: while its body is read, while it waits for a
scan or a rate-limit decision, while the engine has not answered yet (for a non-streamed request that is
the whole generation), and while a stream is relayed.

Why: a client that hung up before the engine's response headers used to leave the engine generating for
up to the upstream read timeout (600 s). Cancelling the request's task closes the engine's connection,
and vLLM aborts a request whose connection closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Receive

from server.errors import GatewayError

# nginx's "client closed request": what the logs, metrics and audit rows say for a request the client left.
CLIENT_CLOSED = 499


class ClientGone(GatewayError):
    """The client disconnected before its answer; nothing is sent (it would reach nobody)."""

    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED, "client_closed_request", "The client closed the connection.")


class ClientWatch:
    """Waits for the client's `http.disconnect` while the request's task awaits something else, then calls
    `on_gone`: by default it cancels that task (the caller turns the CancelledError into ClientGone with
    `gone_after_cancel`). A stream relay takes the watch over and sets its own `on_gone`.

    Start it only after the request body has been read (it consumes `receive`), and `close` it before the
    response completes: servers report a finished response as a disconnect too.

    The watching task starts `START_AFTER` seconds after the watch (or at once with `start()`): a watcher
    task per request cost ~0.1 ms of CPU per request in the gateway benchmark, and most requests that
    finish that fast have nothing worth cancelling. A client gone earlier is noticed then.
    """

    START_AFTER = 0.02

    __slots__ = ("_receive", "_task", "_timer", "_watcher", "gone", "on_gone")

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._receive = receive
        self.on_gone: Callable[[], object] | None = task.cancel
        self._watcher: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            self.START_AFTER, self.start
        )

    def start(self) -> None:
        """Watch from now on (a stream relay watches for the whole stream)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watcher is None and self.on_gone is not None:
            self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self.on_gone is not None:
            self.on_gone()

    def close(self) -> None:
        self.on_gone = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watcher is not None:
            self._watcher.cancel()

    def gone_after_cancel(self) -> bool:
        """In an `except CancelledError`: whether this watch cancelled the task (the client left). Then the
        cancellation is withdrawn, so the request can still be booked."""
        if not self.gone:
            return False
        uncancel = getattr(self._task, "uncancel", None)  # Python >= 3.11 counts cancellations
        if uncancel is not None:
            uncancel()
        return True
