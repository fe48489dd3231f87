"""A webhook receiver on 127.0.0.1 for the alert tests: it answers as told and keeps what it accepted."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "s3cret-webhook-token"
"""In every receiver's URL: a test greps for it where the URL must never be written."""


class Receiver:
    """A webhook on 127.0.0.1 answering each POST with the next of `answers` (the last one repeats); an answer of
    0 is none at all (the request waits past the client's timeout)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers, self.requests, self.accepted = answers, 0, []  # type: ignore[var-annotated]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = receiver.answers[min(receiver.requests, len(receiver.answers) - 1)]
                receiver.requests += 1
                if answer == 0:
                    time.sleep(3)
                    return
                if answer == 200:
                    receiver.accepted.append(body)
                self.send_response(answer)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?token={TOKEN}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
