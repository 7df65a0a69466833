"""Whether someone who paused has finished their turn, judged from their voice: Pipecat's smart-turn v3 (BSD-2), an
~8 MB int8 ONNX model over the last 8 s of audio (Whisper log-mel features), 23 languages, no words needed.

The model and its numpy feature code ship inside the ``pipecat-ai`` wheel, installed without its dependencies
(Parley needs none of the framework): both are read from the installed files, and ``pipecat`` itself is never
imported (its package imports a logging framework and more). onnxruntime is Piper's already.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import threading
from pathlib import Path
from types import ModuleType

import numpy as np

from actors.listening.timing import TurnTimes
from actors.listening.turns import TurnRules

log = logging.getLogger("parley.turns")
RATE = 16000
WINDOW_S = 8  # the model hears the last 8 s of the turn, zeros before a shorter one
MODEL_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3*-cpu.onnx"  # the newest v3 the wheel has
FEATURES_FILE = "pipecat/audio/turn/smart_turn/_whisper_features.py"


class TurnModelMissing(RuntimeError):
    pass


def installed_file(relative: str) -> Path:
    try:
        where = Path(str(importlib.metadata.distribution("pipecat-ai").locate_file(relative))).parent
    except importlib.metadata.PackageNotFoundError as e:
        raise TurnModelMissing("the end-of-turn model is not installed (pip install --no-deps pipecat-ai)") from e
    found = sorted(where.glob(Path(relative).name))
    if not found:
        raise TurnModelMissing(f"the end-of-turn model's file {relative} is not in the installed pipecat-ai")
    return found[-1]


def _features_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("parley_smart_turn_features", installed_file(FEATURES_FILE))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # numpy only
    return module


class SmartTurn:
    """``complete(pcm)``: the probability that 16 kHz mono 16-bit speech ending now is a finished turn."""

    name = "smart-turn-v3"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads  # one: the model runs beside Vosk and Piper, on a machine that answers too
        self._session = None
        self._features: ModuleType | None = None
        self._lock = threading.Lock()

    @staticmethod
    def installed() -> bool:
        try:
            installed_file(MODEL_FILE)
            return True
        except TurnModelMissing:
            return False

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._features = _features_module()
            self._session = ort.InferenceSession(str(installed_file(MODEL_FILE)), sess_options=options)
            log.info("end-of-turn model %s loaded", self.name)

    def complete(self, pcm: bytes) -> float:
        self.load()
        audio = np.frombuffer(pcm[:len(pcm) // 2 * 2], np.int16).astype(np.float32) / 32768.0
        most = WINDOW_S * RATE
        audio = audio[-most:] if len(audio) >= most else np.pad(audio, (most - len(audio), 0))
        assert self._features is not None and self._session is not None
        features = self._features.compute_whisper_log_mel_features(audio, do_normalize=True)[None]
        return float(self._session.run(None, {"input_features": features})[0].reshape(-1)[0])


def turn_taking(settings, speech: object | None,  # noqa: ANN001
                times: TurnTimes) -> tuple[TurnRules, SmartTurn | None, TurnTimes]:
    """The rules of turn-taking from the settings, the end-of-turn model where it can serve (a machine without it
    judges pauses by their last word, and says so once), and where the stages of each turn are timed."""
    rules = TurnRules(settings.turn_detection, settings.turn_wait_ms / 1000,
                      backchannel_s=settings.backchannel_ms / 1000)
    if speech is None or not rules.on:
        return rules, None, times
    if not SmartTurn.installed():
        log.warning("the end-of-turn model is not installed (pip install --no-deps pipecat-ai): a pause is judged by "
                    "its last word alone")
        return rules, None, times
    return rules, SmartTurn(), times
