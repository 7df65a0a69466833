"""An OpenAI-compatible HTTP server for tests and benchmarks: chat completions (plain and streaming),
files (purpose ``fine-tune``) and fine-tuning jobs whose status moves on one step per poll
(validating_files, queued, running, then succeeded or failed), or an account that may not fine-tune.

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
    cut_after: int | None = None  # send this many chunks, then drop the connection (no finish, no [DONE])
    garbage_after: int | None = None  # send this many chunks, then a data line that is not JSON


class FakeOpenAI:
    def __init__(self, reply: Callable[[list[dict]], str] = echo_reply, chunk_size: int = 8, port: int = 0):
        self.reply = reply
        self.chunk_size = chunk_size
        self.requests: list[dict] = []
        self.stream_seconds: list[float] = []  # how long each streamed answer took to send
        self.answer_delay = 0.0  # how long an unscripted answer takes to start
        self.one_at_a_time = False  # unscripted answers wait for each other, like one local model's single slot
        self._slot: asyncio.Lock | None = None
        self.abandoned_streams = 0  # streams the client closed before the end (generation stopped)
        self.chunks_sent: list[int] = []  # chunks sent per streamed answer, finished or abandoned
        self.script: deque[Scripted] = deque()
        self.files: dict[str, tuple[str, str, bytes]] = {}  # id -> (filename, purpose, bytes)
        self.jobs: dict[str, dict] = {}
        self.job_outcomes: deque[str] = deque()  # "succeeded" (default) or "failed", per job created
        self.fine_tuning_refused: int | None = None  # e.g. 403: this account may not fine-tune
        self.polls = 0
        self.hold_polls = threading.Event()  # while set, a job's retrieval waits (a poll in flight, for crash tests)
        self.polls_held = 0  # retrievals that have waited so far
        self.hold_creates = threading.Event()  # while set, a job is created at once but its answer waits
        self.creates_held = 0
        self._served: ServedApp
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_post("/v1/fine_tuning/jobs", self._create_job)
        app.router.add_get("/v1/fine_tuning/jobs", self._list_jobs)
        app.router.add_get("/v1/fine_tuning/jobs/{job_id}", self._retrieve_job)
        app.router.add_post("/v1/fine_tuning/jobs/{job_id}/cancel", self._cancel_job)
        self._served = ServedApp(app, "fake-openai", self.port)
        self.port = self._served.port
        return self

    def stop(self) -> None:
        self._served.stop()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- files and fine-tuning -------------------------------------------------------------------
    PROGRESS = ("validating_files", "queued", "running")

    def _refused(self) -> web.Response | None:
        if self.fine_tuning_refused is None:
            return None
        return web.json_response({"error": {"message": "You are not allowed to create fine-tuning jobs for this "
                                                       "organization.", "type": "invalid_request_error",
                                            "code": "permission_denied"}}, status=self.fine_tuning_refused)

    async def _upload(self, request: web.Request) -> web.Response:
        if (refused := self._refused()) is not None:
            return refused
        form = await request.post()
        upload, purpose = form.get("file"), str(form.get("purpose", ""))
        data = upload.file.read() if hasattr(upload, "file") else bytes(str(upload), "utf-8")  # type: ignore[union-attr]
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = (getattr(upload, "filename", "upload"), purpose, data)
        return web.json_response({"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                  "filename": getattr(upload, "filename", "upload"), "purpose": purpose,
                                  "status": "processed"})

    async def _create_job(self, request: web.Request) -> web.Response:
        if (refused := self._refused()) is not None:
            return refused
        body = await request.json()
        if body.get("training_file") not in self.files:
            return web.json_response({"error": {"message": "invalid training_file", "type": "invalid_request_error",
                                                "code": None}}, status=400)
        job_id = f"ftjob-{len(self.jobs) + 1}"
        self.jobs[job_id] = {
            "id": job_id, "object": "fine_tuning.job", "created_at": int(time.time()), "model": body["model"],
            "training_file": body["training_file"], "validation_file": None, "status": self.PROGRESS[0],
            "fine_tuned_model": None, "error": None, "finished_at": None, "hyperparameters": {"n_epochs": "auto"},
            "method": body.get("method") or {"type": "supervised"}, "organization_id": "org-fake",
            "result_files": [], "seed": 0, "trained_tokens": None, "suffix": body.get("suffix"),
            "metadata": body.get("metadata"),
            "_outcome": self.job_outcomes.popleft() if self.job_outcomes else "succeeded"}
        if self.hold_creates.is_set():  # the job exists; the client has not heard so yet
            self.creates_held += 1
            while self.hold_creates.is_set():
                await asyncio.sleep(0.02)
        return web.json_response(self._public(self.jobs[job_id]))

    async def _list_jobs(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [self._public(j) for j in reversed(self.jobs.values())],
                                  "has_more": False})

    async def _retrieve_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return web.json_response({"error": {"message": "no such job", "type": "invalid_request_error",
                                                "code": None}}, status=404)
        if self.hold_polls.is_set():
            self.polls_held += 1
            while self.hold_polls.is_set():
                await asyncio.sleep(0.02)
        self.polls += 1
        if job["status"] in self.PROGRESS:  # one step further on each poll
            i = self.PROGRESS.index(job["status"])
            if i + 1 < len(self.PROGRESS):
                job["status"] = self.PROGRESS[i + 1]
            elif job["_outcome"] == "failed":
                job.update(status="failed", finished_at=int(time.time()), error={
                    "code": "invalid_training_file", "param": "training_file",
                    "message": "The job failed due to an invalid training file."})
            else:
                job.update(status="succeeded", finished_at=int(time.time()),
                           fine_tuned_model=f"ft:{job['model']}:parley:{job['suffix'] or 'tuned'}:{job['id']}")
        return web.json_response(self._public(job))

    async def _cancel_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return web.json_response({"error": {"message": "no such job", "type": "invalid_request_error",
                                                "code": None}}, status=404)
        if job["status"] in self.PROGRESS:
            job.update(status="cancelled", finished_at=int(time.time()))
        return web.json_response(self._public(job))

    @staticmethod
    def _public(job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        step = self.script.popleft() if self.script else Scripted(delay=self.answer_delay)
        if step.delay and self.one_at_a_time:
            self._slot = self._slot or asyncio.Lock()
            async with self._slot:
                await asyncio.sleep(step.delay)
        elif step.delay:
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
                if step.cut_after is not None and i >= step.cut_after:
                    assert request.transport is not None
                    request.transport.close()  # the server (or a proxy) died mid-answer
                    raise ConnectionResetError("cut by the script")
                if step.garbage_after is not None and i >= step.garbage_after:
                    await response.write(b'data: {"choices": [{"delta": {"content": "x"\n\n')
                    await response.write(b"data: [DONE]\n\n")
                    await response.write_eof()
                    self.chunks_sent.append(sent)
                    return response
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
