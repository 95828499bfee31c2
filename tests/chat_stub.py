"""A local OpenAI-compatible chat endpoint for the generator's tests and benchmark (http.server in a thread).

Each POST to ``/v1/chat/completions`` is answered by ``plan(request) -> Reply``; the default plan
writes a well-formed answer for the sample type (found from the system prompt) about the image whose
context is in the last user message. ``StubRequest.repeat`` counts earlier requests of the same type
with the same context, so a plan can fail the first attempt and answer the retry. Only 127.0.0.1 is used.

    with ChatStub() as stub:
        ... base_url=stub.base_url ...
        stub.request_count
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Callable

from tests.loopback_http import LoopbackServer, send_body


@dataclass
class StubRequest:
    body: dict
    sample_type: str  # conversation, reasoning or "" (found from the system prompt)
    context: str  # the last user message
    label: str  # the "emotion: X" line of the context
    repeat: int  # earlier requests of this type with this context


@dataclass
class Reply:
    status: int = 200
    text: str = ""  # the answer (status 200) or the error message
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a timeout test waits longer than the client)
    raw_body: bytes | None = None  # sent as is (garbage that is not JSON)
    finish_reason: str = "stop"
    usage: bool = True


def good_answer(request: StubRequest) -> str:
    """A well-formed answer of the request's type; its words depend on the context, never quoting it."""
    words = re.findall(r"[a-z]+", request.context.split("\n\n")[0].casefold())
    topic = " ".join(words[:4]) or "the scene"
    if request.sample_type == "reasoning":
        return (f"Question:\nWhat makes the view of {topic} feel the way it does?\n===\nAnswer:\n"
                f"The light and the colours set the tone first, then the things in view add to it, so the image "
                f"evokes {request.label}.")
    return (f"Question:\nWhat is the main subject near {topic}?\n===\nAnswer:\nThe main subject stands at the centre "
            f"of the frame.\n===\nQuestion:\nHow bright is the view of {topic}?\n===\nAnswer:\nThe light is even "
            f"across the whole frame.\n===\nQuestion:\nWhy does the scene feel like {request.label}?\n===\nAnswer:\n"
            f"Everything in view points the same way, so the mood reads as {request.label}.")


def answer_well(request: StubRequest) -> Reply:
    return Reply(text=good_answer(request))


class ChatStub:
    def __init__(self, plan: Callable[[StubRequest], Reply] = answer_well):
        self.plan = plan
        self.requests: list[StubRequest] = []
        self._seen: Counter = Counter()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = stub._describe(body)
                reply = stub.plan(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw_body is not None:
                    data, kind = reply.raw_body, "text/html"
                elif reply.status == 200:
                    data, kind = json.dumps(stub._completion(body, reply)).encode(), "application/json"
                else:
                    data, kind = json.dumps({"error": {"message": reply.text}}).encode(), "application/json"
                send_body(self, reply.status, data, kind, reply.headers)

            def log_message(self, *args):
                pass

        self.loopback = LoopbackServer(Handler)
        self.base_url = self.loopback.base_url

    def _describe(self, body: dict) -> StubRequest:
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        sample_type = ("reasoning" if "reasoning question" in system else
                       "conversation" if "conversation" in system else "")
        context = messages[-1]["content"] if messages else ""
        label = (re.search(r"^emotion: (\w+)", context, re.MULTILINE) or [None, ""])[1]
        with self._lock:
            repeat = self._seen[sample_type, context]
            self._seen[sample_type, context] += 1
            request = StubRequest(body, sample_type, context, label, repeat)
            self.requests.append(request)
        return request

    @staticmethod
    def _completion(body: dict, reply: Reply) -> dict:
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        payload = {"id": "stub", "object": "chat.completion", "created": 0, "model": body.get("model", "stub"),
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                                "finish_reason": reply.finish_reason}]}
        if reply.usage:
            payload["usage"] = {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(reply.text) // 4,
                                "total_tokens": prompt_chars // 4 + len(reply.text) // 4}
        return payload

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self.loopback.close()

    def __enter__(self) -> "ChatStub":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


if __name__ == "__main__":  # a stub to point a manual run at
    with ChatStub() as running:
        print(running.base_url, flush=True)
        threading.Event().wait()
