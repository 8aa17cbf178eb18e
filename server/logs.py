"""JSON-line logging. Request logs carry ids, key names, statuses, timings and token counts only: never a
prompt, a completion or a key (nothing in this package passes those to a logger)."""

from __future__ import annotations

import logging
import sys
import time

import orjson

# LogRecord attributes that are not user "extra" fields.
_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD:
                out[k] = v
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages of some exceptions could echo request data.
            out["exc_type"] = record.exc_info[0].__name__
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Skip the stack walk that finds each record's caller (file/line are not in our JSON lines):
    # it was a visible share of the per-request CPU in profiles.
    logging._srcfile = None
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # The per-request JSON line replaces uvicorn's access log (which would log paths and client addresses).
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
