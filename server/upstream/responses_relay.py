"""The Responses API's SSE relay: vLLM's `/v1/responses` stream to the client event by event.

`StreamRelay` (relay.py) does the transport: each upstream read forwarded before the next, client
disconnects, the shutdown drain, upstream failures mid-stream. This subclass reads Responses events
instead of chat chunks. Everything the model writes goes through an output guard, as on chat: the answer's
text (`output_text`, which also gets the policy's notices), and as side channels the function-call
arguments, custom-tool input and reasoning text:

- a `*.delta` event carries what its guard releases; what the guard still holds goes out in a delta the
  gateway adds just before the piece closes (its `*.done`, `content_part.done` or `output_item.done`);
- every closing event and the final response carry what the client was actually sent (released,
  redacted), never the engine's raw text; token logprobs and vLLM's raw `output_messages` are withheld;
- `response.completed` / `.incomplete` / `.failed` end the stream and carry the usage that is metered
  (before it, each delta counts as one generated token, for a stream that ends early);
- a guard block, an upstream error or a malformed event ends the stream with an `error` event.

Events the gateway adds move later `sequence_number`s up, so the client still sees 0, 1, 2, ...
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from server.openai_shapes import responses_delta, responses_error_event, responses_event
from server.safety import ResponseGuard
from server.upstream.relay import StreamRelay

_perf = time.perf_counter
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
STOPPED = "The answer was stopped by the safety policy."

# What the model writes, per kind of piece: its delta event, its done event and the field that holds the
# whole text there. A piece is keyed (kind, output_index, content_index).
TEXT, ARGS, INPUT, REASONING = "output_text", "arguments", "input", "reasoning_text"
DELTA = {
    "response.output_text.delta": TEXT,
    "response.function_call_arguments.delta": ARGS,
    "response.custom_tool_call_input.delta": INPUT,
    "response.reasoning_text.delta": REASONING,
}
DONE = {
    "response.output_text.done": (TEXT, "text"),
    "response.function_call_arguments.done": (ARGS, "arguments"),
    "response.custom_tool_call_input.done": (INPUT, "input"),
    "response.reasoning_text.done": (REASONING, "text"),
}
_DELTA_OF = {kind: event for event, kind in DELTA.items()}
# Events that close whole parts or items (their pieces' guards are finished first).
_CLOSING = frozenset({"response.content_part.done", "response.output_item.done"})
# Item types and where their written text sits: a top-level field, or content parts of a type.
_ITEM_FIELDS = {"function_call": (ARGS, "arguments"), "custom_tool_call": (INPUT, "input")}
_ITEM_PARTS = {"message": TEXT, "reasoning": REASONING}
Key = tuple[str, int, int]


def _split(event: bytes) -> tuple[bytes | None, bytes | None]:
    """(event name, data) of one SSE event; several data lines join with a newline (the SSE rule)."""
    name, data = None, []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:].strip())
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return name, (b"\n".join(data) if data else None)


class Pieces:
    """One output guard per piece the model writes, and the text each piece was sent as.

    A streamed piece is fed delta by delta and closed when it ends; a piece the engine never streamed (it
    appears only in a closing event or the final response) is checked whole when it is first seen."""

    def __init__(self, guards: ResponseGuard) -> None:
        self.guards = guards
        self.slots: dict[Key, tuple[int, str]] = {}  # piece -> (index, channel) of its guard
        self.sent: dict[Key, str] = {}
        self.closed: set[Key] = set()
        self.item_ids: dict[Key, str] = {}
        self._texts = 0

    def _guard(self, key: Key) -> Any:
        slot = self.slots.get(key)
        if slot is None:
            if key[0] == TEXT:  # the answer's text: its own content guard (notices, crisis resources)
                slot, self._texts = (self._texts, "content"), self._texts + 1
            else:  # a side channel (tool arguments, reasoning): checked the same, but gets no notices
                slot = (0, ("tool" if key[0] != REASONING else "reasoning") + f":{key[1]}:{key[2]}")
            self.slots[key] = slot
        return self.guards.guard(*slot)

    def feed(self, key: Key, text: str) -> tuple[str, str | None]:
        """(text to send now, block message or None)."""
        g = self._guard(key)
        out = g.feed(text)
        if g.blocked:
            return "", g.block_message or STOPPED
        self.sent[key] = self.sent.get(key, "") + out
        return out, None

    def close(self, keys: list[Key]) -> tuple[list[tuple[Key, str]], str | None]:
        """Finish the open guards of `keys`: ([(piece, text still held)], block message or None)."""
        tails = []
        for key in keys:
            if key not in self.slots or key in self.closed:
                continue
            self.closed.add(key)
            g = self._guard(key)
            text = g.finish()
            if g.blocked:
                return [], g.block_message or STOPPED
            self.sent[key] = self.sent.get(key, "") + text
            if text:
                tails.append((key, text))
        return tails, None

    def open_keys(self, output_index: int | None = None) -> list[Key]:
        """Pieces still open, of one output item or (None) of all."""
        return [
            k for k in self.slots if k not in self.closed and (output_index is None or k[1] == output_index)
        ]

    def final(self, key: Key, text: Any) -> tuple[str, str | None]:
        """The text a closed piece shows; a piece never streamed goes through its guard whole here."""
        if key in self.slots:
            _, blocked = self.close([key])  # normally closed already, its tail sent as a delta
            return ("", blocked) if blocked is not None else (self.sent.get(key, ""), None)
        if not isinstance(text, str):
            raise TypeError("output text is not a string")
        g = self._guard(key)
        self.closed.add(key)
        out = g.feed(text) + g.finish()
        if g.blocked:
            return "", g.block_message or STOPPED
        self.sent[key] = out
        return out, None


def _drop_logprobs(obj: dict[str, Any]) -> None:
    # Under the output guard the client gets no token logprobs: they spell out the engine's raw tokens,
    # held-back and redacted text included.
    if obj.get("logprobs"):
        obj["logprobs"] = []


def guard_output(items: list[Any], pieces: Pieces, first_index: int = 0) -> str | None:
    """Put what each piece was sent as into output items (in place); a block message or None.
    `first_index` is the output_index of `items[0]` (a `response.output_item.done` event holds one item)."""
    for o, item in enumerate(items, first_index):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in _ITEM_FIELDS:
            piece, field = _ITEM_FIELDS[kind]
            if field in item:
                item[field], blocked = pieces.final((piece, o, 0), item[field])
                if blocked is not None:
                    return blocked
        elif kind in _ITEM_PARTS:
            for c, part in enumerate(item.get("content") or []):
                if isinstance(part, dict) and part.get("type") == _ITEM_PARTS[kind]:
                    part["text"], blocked = pieces.final((_ITEM_PARTS[kind], o, c), part.get("text"))
                    _drop_logprobs(part)
                    if blocked is not None:
                        return blocked
    return None


def guard_response(response: dict[str, Any], pieces: Pieces) -> str | None:
    """`guard_output` over a whole response object. vLLM's `output_messages` (asked for with
    `enable_response_messages`) is the engine's raw answer, which the guards never released: removed."""
    if response.get("output_messages") is not None:
        response["output_messages"] = None
    return guard_output(response.get("output") or [], pieces)


class ResponsesRelay(StreamRelay):
    """StreamRelay for `POST /v1/responses` (see the module docstring). Streams end at a terminal
    `response.*` event (there is no [DONE]); usage always comes with it, so nothing is stripped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pieces = Pieces(self.guards) if self.guards is not None else None
        self.shift = 0  # events the gateway added so far
        self.next_seq = 0  # the sequence number of the next event the client gets

    def _fail(self, message: str, code: str, kind: str) -> bytes:
        super()._fail(message, code, kind)  # ends the stream, counts it; the bytes are Responses-shaped here
        err_type = "invalid_request_error" if code == "content_policy_violation" else "server_error"
        self._error_bytes = responses_error_event(message, code, err_type, self.next_seq)
        return self._error_bytes

    def _block(self, message: str) -> bytes:
        return self._fail(message, "content_policy_violation", "")

    def _event(self, event: bytes) -> bytes | None:
        name, data = _split(event)
        if data is None:  # comments / keep-alives: pass through untouched
            return event + b"\n\n" if event.strip() else None
        obj = orjson.loads(data)  # a ValueError here ends the stream as malformed (_safe_event)
        if not isinstance(obj, dict):
            raise TypeError("event is not an object")
        kind = obj.get("type")
        seq = obj.get("sequence_number")
        numbered = isinstance(seq, int) and not isinstance(seq, bool)
        if numbered:
            self.next_seq = seq + self.shift
        if obj.get("error") or kind == "error":
            return self._upstream_error(obj)
        before = b""
        if kind in DELTA:
            text = obj["delta"]
            if not isinstance(text, str):
                raise TypeError("delta is not a string")
            # Each delta is at least one generated token: what a stream ending early is charged.
            self.ctx.completion_tokens = (self.ctx.completion_tokens or 0) + 1
            if self.pieces is not None:
                key = (DELTA[kind], obj["output_index"], obj.get("content_index", 0))
                self.pieces.item_ids[key] = str(obj.get("item_id", ""))
                obj["delta"], blocked = self.pieces.feed(key, text)
                _drop_logprobs(obj)
                if blocked is not None:
                    return self._block(blocked)
            self._first_text(obj["delta"])
        elif self.pieces is not None and (kind in DONE or kind in _CLOSING or kind in TERMINAL):
            before = self._release(obj.get("output_index") if kind not in TERMINAL else None)
            if self.done:  # a guard blocked while releasing
                return before
            blocked = self._closed_text(kind, obj)
            if blocked is not None:
                return before + self._block(blocked)
        elif isinstance(kind, str) and kind.endswith(".delta"):  # other deltas: time to first token only
            self._first_text(obj.get("delta"))
        if kind in TERMINAL:
            usage = obj["response"].get("usage") or {}
            self.ctx.prompt_tokens = usage.get("input_tokens")
            self.ctx.completion_tokens = usage.get("output_tokens")
            self.done = True
        guarded = kind in DELTA or kind in DONE or kind in TERMINAL or kind in _CLOSING
        changed = self.pieces is not None and guarded
        if numbered:
            obj["sequence_number"] = self.next_seq
            self.next_seq += 1
            changed = changed or self.shift != 0
        if not changed:
            return before + event + b"\n\n"
        out = responses_event(obj) if name is not None else b"data: " + orjson.dumps(obj) + b"\n\n"
        return before + out

    def _closed_text(self, kind: str, obj: dict[str, Any]) -> str | None:
        """Rewrite a closing event's text to what the client was sent; a block message or None."""
        assert self.pieces is not None
        if kind in TERMINAL:
            return guard_response(obj["response"], self.pieces)
        if kind == "response.output_item.done":
            return guard_output([obj["item"]], self.pieces, obj["output_index"])
        if kind in DONE:
            piece, field = DONE[kind]
            key = (piece, obj["output_index"], obj.get("content_index", 0))
            obj[field], blocked = self.pieces.final(key, obj.get(field))
            _drop_logprobs(obj)
            return blocked
        part = obj["part"]  # response.content_part.done
        piece = {TEXT: TEXT, REASONING: REASONING}.get(part.get("type")) if isinstance(part, dict) else None
        if piece is None:
            return None
        key = (piece, obj["output_index"], obj["content_index"])
        part["text"], blocked = self.pieces.final(key, part.get("text"))
        _drop_logprobs(part)
        return blocked

    def _upstream_error(self, obj: dict[str, Any]) -> bytes:
        err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
        msg = err.get("message") if isinstance(err.get("message"), str) else "The model server failed."
        self.done = True
        self.ctx.stream_error = "upstream_error"
        self.metrics.upstream_errors.labels("stream_error").inc()
        return responses_error_event(msg, "upstream_error", "server_error", self.next_seq)

    def _first_text(self, text: object) -> None:
        # Time to first token: the first event that carries generated text, as for chat's content deltas.
        # (StreamRelay's own check looks for chat fields; setting sent_first here replaces it.)
        if not self.sent_first and isinstance(text, str) and text:
            self.sent_first = True
            self.ctx.ttft = _perf() - self.ctx.t0

    def _release(self, output_index: int | None) -> bytes:
        """What the guards of an output item (None: of every item) still hold, as deltas the gateway adds
        before the item's pieces close."""
        assert self.pieces is not None
        tails, blocked = self.pieces.close(self.pieces.open_keys(output_index))
        if blocked is not None:
            return self._block(blocked)
        out = b""
        for (piece, o, c), text in tails:
            item_id = self.pieces.item_ids.get((piece, o, c), "")
            delta = responses_delta(
                _DELTA_OF[piece], item_id, o, c if piece in (TEXT, REASONING) else None, text
            )
            delta["sequence_number"] = self.next_seq
            out += responses_event(delta)
            self._first_text(text)
            self.shift += 1
            self.next_seq += 1
        return out
