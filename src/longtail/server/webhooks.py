"""Webhooks out: events (round completed, batch exhausted) POSTed as JSON to the URLs
given to `longtail serve --webhook URL`, from a background thread, with retries.

Each delivery carries `X-Longtail-Event` and, with a secret, `X-Longtail-Signature:
sha256=<hex HMAC-SHA256 of the body>` so a receiver can tell it came from us. A
delivery is tried `attempts` times with exponential backoff; one that still fails is
logged (URL and status only) and dropped: the events are notifications, the catalog
stays the record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from typing import Any

log = logging.getLogger("longtail.server.webhooks")


class Webhooks:
    """A delivery queue and its worker thread (started on the first event)."""

    def __init__(self, urls: list[str], secret: str | None = None, *, attempts: int = 4,
                 backoff: float = 0.5, transport: Any = None):
        self.urls = list(urls)
        self._secret = secret
        self.attempts, self.backoff = attempts, backoff
        self._transport = transport
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def emit(self, event: str, **data: Any) -> None:
        """Queue `event` for every URL (returns at once)."""
        if not self.urls:
            return
        body = json.dumps({"event": event, "at": time.time(), **data}).encode()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="longtail-webhooks",
                                                daemon=True)
                self._thread.start()
        for url in self.urls:
            self._queue.put((url, event, body))

    def join(self) -> None:
        """Wait until every queued delivery was made or given up (tests, shutdown)."""
        self._queue.join()

    def _run(self) -> None:
        import httpx

        with httpx.Client(transport=self._transport, timeout=5.0) as client:
            while True:
                url, event, body = self._queue.get()
                try:
                    self._deliver(client, url, event, body)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: Any, url: str, event: str, body: bytes) -> None:
        import httpx

        headers = {"content-type": "application/json", "x-longtail-event": event}
        if self._secret:
            sig = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
            headers["x-longtail-signature"] = f"sha256={sig}"
        why = ""
        for attempt in range(self.attempts):
            try:
                r = client.post(url, content=body, headers=headers)
                if r.status_code < 300:
                    return
                why = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                why = type(e).__name__
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff * 2 ** attempt)
        log.warning("webhook %s to %s failed after %d attempts (%s)", event, url, self.attempts, why)
