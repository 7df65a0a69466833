"""An OpenAI-compatible HTTP server for tests and benchmarks (chat completions, plain and streaming).

The real ``openai`` client talks to it over HTTP on 127.0.0.1. Tests script failures (status codes,
delays) and read back the requests it received.
"""
from __future__ import annotations

import asyncio
import itertools
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
    delay: float = 0.0  # before the response starts (headers included)
    chunk_delay: float = 0.0  # pause between streamed chunks
    headers: dict[str, str] | None = None  # extra response headers (e.g. Retry-After)
    endless: bool = False  # stream without end (and ignore max_tokens), until the client goes away
    stall_after: int | None = None  # send this many chunks, then go silent until the client goes away
    ignore_max_tokens: bool = False  # a server that does not honour the field
    message: str | None = None  # the error message of a non-200 status


class FakeOpenAI:
    def __init__(self, reply: Callable[[list[dict]], str] = echo_reply, chunk_size: int = 8, port: int = 0):
        self.reply = reply
        self.chunk_size = chunk_size
        self.requests: list[dict] = []
        self.stream_seconds: list[float] = []  # how long each streamed answer took to send
        self.answer_delay = 0.0  # how long an unscripted answer takes to start
        self.abandoned_streams = 0  # streams the client closed before the end (generation stopped)
        self.chunks_sent: list[int] = []  # chunks sent per streamed answer, finished or abandoned
        self.script: deque[Scripted] = deque()
        self._served: ServedApp
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._served = ServedApp(app, "fake-openai", self.port)
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
        step = self.script.popleft() if self.script else Scripted(delay=self.answer_delay)
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.status != 200:
            return web.json_response(
                {"error": {"message": step.message or f"scripted failure {step.status}", "type": "server_error",
                           "code": None}},
                status=step.status, headers=step.headers)
        text = step.text if step.text is not None else self.reply(body["messages"])
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
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
        finish = "stop"
        if limit and not (step.ignore_max_tokens or step.endless) and len(pieces) > limit:
            pieces, finish = pieces[:limit], "length"  # one chunk stands for one token here
        sent = 0
        try:
            for i in itertools.count():
                if not step.endless and i >= len(pieces):
                    break
                if step.stall_after is not None and i >= step.stall_after:
                    # Silent, as a server stuck in generation is, until the client closes the stream.
                    while request.transport is not None and not request.transport.is_closing():
                        await asyncio.sleep(0.05)
                    raise ConnectionResetError("the client closed the stream")
                piece = pieces[i % len(pieces)] if not step.endless else f"word{i} "
                chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [{"index": 0, "delta": ({"role": "assistant"} if i == 0 else {}) | {"content": piece},
                                      "finish_reason": None}]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                sent += 1
                if step.chunk_delay or step.endless:
                    await asyncio.sleep(step.chunk_delay or 0.001)
            done = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            await response.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.abandoned_streams += 1  # the client closed the stream: a real server stops generating here
            self.chunks_sent.append(sent)
            raise
        self.chunks_sent.append(sent)
        self.stream_seconds.append(time.monotonic() - began)
        return response


def main(argv: list[str] | None = None) -> int:
    """Run it on its own, for trying Parley by hand: ``python -m tests.fakes.openai_server [PORT]``."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m tests.fakes.openai_server",
                                description="An OpenAI-compatible server on 127.0.0.1 that echoes the last message.")
    p.add_argument("port", nargs="?", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 picks a free one)")
    args = p.parse_args(argv)
    try:
        server = FakeOpenAI(port=args.port).start()
    except OSError as e:
        print(f"cannot listen on 127.0.0.1:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"fake OpenAI-compatible server on {server.base_url}; in another shell:\n"
          f"  export OPENAI_BASE_URL={server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
