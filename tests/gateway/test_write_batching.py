"""The gateway's socket writes: what one event-loop step writes leaves in one send(), and nothing waits
for a later step (server/protocol.py, _BatchingTransport)."""

from __future__ import annotations

import asyncio

from server.protocol import _BatchingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_one_step_one_write_and_nothing_left_for_later() -> None:
    real = FakeTransport()
    t = _BatchingTransport(real, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"")
    t.writelines([b"data: a\n\n", b"data: b\n\n"])
    assert real.writes == [] and t.get_write_buffer_size() == 37
    await asyncio.sleep(0)  # the step ends: everything goes out together
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\ndata: a\n\ndata: b\n\n"]
    t.write(b"data: c\n\n")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"data: c\n\n"]


async def test_close_sends_first_abort_drops_and_the_rest_is_the_real_transport() -> None:
    real = FakeTransport()
    t = _BatchingTransport(real, asyncio.get_running_loop())
    t.write(b"last words")
    t.close()
    assert real.writes == [b"last words"] and real.closed
    await asyncio.sleep(0)
    assert real.writes == [b"last words"]  # the scheduled flush finds nothing more to send

    real2 = FakeTransport()
    t2 = _BatchingTransport(real2, asyncio.get_running_loop())
    t2.write(b"never sent")
    t2.abort()
    await asyncio.sleep(0)
    assert real2.writes == [] and real2.aborted
    assert t2.get_extra_info("peername") == "info:peername"
