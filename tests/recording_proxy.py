"""A recording HTTP proxy in front of a real llama-server.

Every request the plugin makes reaches the real server unchanged, and the
proxy keeps a copy: tests can check what was sent (and that nothing was)
byte for byte while the answers stay the real server's.
"""

from __future__ import annotations

import httpx

from tests.fakeserver import FakeServer, Received, Reply


class RecordingProxy(FakeServer):
    """Forwards every request to ``upstream`` (e.g. ``http://127.0.0.1:8012``) and records it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        super().__init__()

    def _route(self, request: Received) -> Reply:
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        try:
            answer = httpx.request(
                request.method,
                self.upstream + request.path,
                content=request.body,
                headers=headers,
                timeout=60,
            )
        except httpx.HTTPError as err:
            return Reply.error(502, f"proxy: {err}")
        content_type = answer.headers.get("content-type", "application/json")
        return Reply(status=answer.status_code, body=answer.content, content_type=content_type)

    def sent(self) -> bytes:
        """Every request body so far, joined."""
        with self._lock:
            return b"".join(r.body for r in self.requests)
