"""An OpenAI-compatible HTTP server for tests and benchmarks (chat completions, plain and streaming).

The real ``openai`` client talks to it over HTTP on 127.0.0.1. Tests script failures (status codes,
delays) and read back the requests it received.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from tests.fakes.serving import ServedApp


def echo_reply(messages: list[dict]) -> str:
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    turns = sum(1 for m in messages if m["role"] != "system")
    return f"echo: {last_user} [turns={turns}]"


@dataclass
class Scripted:
    status: int = 200  # a non-200 status answers with an error body
    text: str | None = None  # None: the reply function decides
    delay: float = 0.0
    chunk_delay: float = 0.0  # pause between streamed chunks


class FakeOpenAI:
    def __init__(self, reply: Callable[[list[dict]], str] = echo_reply, chunk_size: int = 8):
        self.reply = reply
        self.chunk_size = chunk_size
        self.requests: list[dict] = []
        self.stream_seconds: list[float] = []  # how long each streamed answer took to send
        self.script: deque[Scripted] = deque()
        self._served: ServedApp
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._served = ServedApp(app, "fake-openai")
        self.port = self._served.port
        return self

    def stop(self) -> None:
        self._served.stop()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        step = self.script.popleft() if self.script else Scripted()
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.status != 200:
            return web.json_response(
                {"error": {"message": f"scripted failure {step.status}", "type": "server_error", "code": None}},
                status=step.status)
        text = step.text if step.text is not None else self.reply(body["messages"])
        created, model = int(time.time()), body.get("model", "fake")
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        began = time.monotonic()
        pieces = [text[i:i + self.chunk_size] for i in range(0, len(text), self.chunk_size)] or [""]
        for i, piece in enumerate(pieces):
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": ({"role": "assistant"} if i == 0 else {}) | {"content": piece},
                                  "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if step.chunk_delay:
                await asyncio.sleep(step.chunk_delay)
        done = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        self.stream_seconds.append(time.monotonic() - began)
        return response


def main() -> None:
    """Run it on its own: ``python -m tests.fakes.openai_server [port]`` (for trying Parley by hand)."""
    import sys

    server = FakeOpenAI()
    server.start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
    del sys


if __name__ == "__main__":
    main()
