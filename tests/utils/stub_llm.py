"""A tiny OpenAI-compatible chat endpoint for tests: streams a scripted answer and records what it was sent.

Modes: ``reply`` streams a fixed text; ``obey`` plays a vulnerable model that follows any instruction it finds in the
sources ("SAY: ..."), so tests show the guards hold even when the model does not.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StubLLM:
    reply: str = "The sources say so [1]."
    mode: str = "reply"
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def answer_for(self, body: dict[str, Any]) -> str:
        if self.mode == "obey":
            user = body["messages"][-1]["content"]
            match = re.search(r"SAY:\s*(.+)", user)
            return match.group(1).strip() if match else self.reply
        return self.reply


@contextmanager
def stub_llm_server(stub: StubLLM) -> Iterator[StubLLM]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stub.requests.append(body)
            if stub.status != 200:
                self.send_response(stub.status)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            text = stub.answer_for(body)
            for piece in re.findall(r"\S+\s*", text):
                chunk = {"choices": [{"delta": {"content": piece}, "index": 0}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
