"""Talking to vLLM.

`client.py`    the engine's HTTP client (a short path for the hot calls) and error translation
`http1.py`     the lean HTTP/1.1 transport under that client for plain-HTTP engines
`probes.py`    the cached model list and readiness probe
`relay.py`     the SSE relay: event by event, usage metering, output guards, cancellation, drain
"""
