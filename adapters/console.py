"""The local console: lines from stdin become the same commands Discord produces; answers go to stdout.

Answers are printed in the order their lines were read (a quick ``!hi`` waits for the answer to the
question before it), which keeps piped output readable and deterministic: one complete answer per line.
On a terminal (``live``) the answer being waited for is shown as it streams.
"""
from __future__ import annotations

import getpass
import mimetypes
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from actors.commands import InvokeCommand, ReceiveAudio, ReceiveMessage, Say
from adapters.audio_files import AudioStore, TooLarge, inside_data_dir, why_not_read
from actors.ports import Delivered, DeliveryResult, Draft, Reply

SOURCE = "console"
CHANNEL = "console"


class ConsoleTransport:
    def __init__(self, out: TextIO, live: bool = False, files_root: Path | None = None):
        self.out = out
        self.files_root = files_root  # the data dir: attachments are shown as paths in it
        self.wants_drafts = live
        self.failed = 0  # answers the LLM could not give (ResponseFailed), for the exit code
        self._shown = ("", "")  # (message id, text) of the answer streaming on the terminal now
        self._bar_open = False  # a progress bar is the last line written, without its newline
        self._lock = threading.Condition()
        self._order: deque[str] = deque()  # message ids in input order, not yet printed
        self._expected: set[str] = set()  # the same ids, for membership tests on long pipes
        self._ready: dict[str, tuple[Reply, Callable[[DeliveryResult], None]]] = {}
        self.last_progress = time.monotonic()

    def expect(self, message_id: str) -> None:
        with self._lock:
            self._order.append(message_id)
            self._expected.add(message_id)

    def deliver(self, reply: Reply, done: Callable[[DeliveryResult], None]) -> None:
        settled = []
        with self._lock:
            if reply.message_id not in self._expected:
                # A reply left over from an earlier run (it crashed before printing it): print it now.
                self._print(reply)
                settled.append((reply, done))
            else:
                self._ready[reply.message_id] = (reply, done)
                while self._order and self._order[0] in self._ready:
                    printed = self._order.popleft()
                    self._expected.discard(printed)
                    first, first_done = self._ready.pop(printed)
                    self._print(first)
                    settled.append((first, first_done))
            self.last_progress = time.monotonic()
            self._lock.notify_all()
        for r, d in settled:
            d(Delivered((f"console:{r.message_id}",)))

    def draft(self, draft: Draft) -> None:
        """On a terminal, show the answer that is next in line as it streams, and a long job's progress bar."""
        if draft.part:
            self._show_progress(draft)
            return
        with self._lock:
            self._end_bar()
            if not self._order or self._order[0] != draft.message_id:
                return  # an answer further down waits its turn, and prints whole
            shown_id, shown = self._shown
            if shown_id != draft.message_id:
                shown = ""
            if not draft.text.startswith(shown):
                return
            self.out.write(draft.text[len(shown):])
            self.out.flush()
            self._shown = (draft.message_id, draft.text)
            self.last_progress = time.monotonic()

    def _show_progress(self, draft: Draft) -> None:
        """The bar redrawn in place on its own line (not while an answer streams: the next one redraws it)."""
        with self._lock:
            if self._shown[1]:
                return
            self.out.write("\r" + draft.text.replace("`", "") + "\033[K" + ("\n" if draft.final else ""))
            self.out.flush()
            self._bar_open = not draft.final

    def _end_bar(self) -> None:
        if self._bar_open:  # what is printed next starts on a line of its own
            self.out.write("\n")
            self._bar_open = False

    def outstanding(self) -> int:
        with self._lock:
            return len(self._order)

    def wait_until_answered(self, patience: float) -> bool:
        """Wait while answers keep coming; give up after ``patience`` seconds without any."""
        with self._lock:
            while self._order:
                if time.monotonic() - self.last_progress > patience:
                    return False
                self._lock.wait(0.2)
        return True

    def _print(self, reply: Reply) -> None:
        self._end_bar()
        if reply.kind == "ResponseFailed":
            self.failed += 1
        shown_id, shown = self._shown
        text = reply.text
        if shown_id == reply.message_id and shown:
            self._shown = ("", "")
            # The streamed part is on the screen already; finish the line (on a new one if it differs).
            text = text[len(shown):] if text.startswith(shown) else "\n" + text
        if reply.attachment:
            where = self.files_root / reply.attachment if self.files_root is not None else reply.attachment
            text += f"\n[file: {where}]"
        self.out.write(text + "\n")
        self.out.flush()


def run_console(dispatch: Callable[[object], None], transport: ConsoleTransport, stdin: TextIO,
                prefix: str, patience: float, err: TextIO = sys.stderr, audio: AudioStore | None = None,
                data_dir: Path | None = None, imports: AudioStore | None = None,
                settle: Callable[[], object] | None = None) -> int:
    author = _user()
    conversation_id = f"console:{author}"
    session = datetime.now().strftime("%Y%m%d%H%M%S%f")
    interactive = stdin.isatty()
    questions: list[str] = []  # this session's questions, for `correct N`
    if interactive:
        err.write(f"Parley console: type a message, or {prefix}help. Ctrl-D to quit.\n")
    after_command = False
    for n, line in enumerate(stdin, start=1):
        text = line.rstrip("\r\n")
        if after_command and settle is not None:
            # Read your own writes: what a command recorded (a correction, an example, a dataset chosen) is
            # seen by the lines after it; plain questions still go to the LLM side by side.
            transport.wait_until_answered(patience)
            settle()
        after_command = text.startswith(prefix) and bool(text[len(prefix):].strip())
        message_id = f"{session}-{n:06d}"
        transport.expect(message_id)
        common = dict(source=SOURCE, conversation_id=conversation_id, channel_id=CHANNEL,
                      message_id=message_id, author_id=author, author_name=author)
        if text.startswith(prefix) and text[len(prefix):].strip():
            name, _, args = text[len(prefix):].strip().partition(" ")
            if name.lower() == "transcribe" and audio is not None and data_dir is not None:
                dispatch(_audio_command(common, args.strip(), audio, data_dir))
                continue
            if name.lower() == "train" and imports is not None and data_dir is not None and _names_file(args):
                dispatch(_import_command(common, name, args.strip(), imports, data_dir))
                continue
            if name.lower() == "correct":  # the last answer, or the Nth answer back
                back, _, text = args.strip().partition(" ")
                n, text = (int(back), text) if back.isdigit() and text.strip() else (1, args)
                target = questions[-n] if 0 < n <= len(questions) else ""
                dispatch(InvokeCommand(**common, name="correct", args=text.strip(), is_admin=True, is_operator=True,
                                       target_message_id=target, via="console"))
                continue
            if name.lower() == "say":  # speaks nothing aloud: writes a WAV under the data dir
                dispatch(Say(**common, text=args.strip()))
                continue
            dispatch(InvokeCommand(**common, name=name, args=args.strip(), is_admin=True, is_operator=True))  # the local user
        else:
            questions.append(message_id)
            dispatch(ReceiveMessage(**common, text=text))
    if not transport.wait_until_answered(patience):
        err.write(f"parley: {transport.outstanding()} message(s) got no answer in time\n")
        return 1
    if transport.failed:
        err.write(f"parley: {transport.failed} message(s) could not be answered by the language model\n")
        return 1
    return 0


def _audio_command(common: dict, relative: str, audio: AudioStore, data_dir: Path) -> object:
    """``!transcribe PATH``: a file inside the data dir becomes a clip, as an attachment would."""
    path = inside_data_dir(data_dir, relative) if relative else None
    if path is None:  # never read: outside the data dir, a link out of it, or not a file
        return InvokeCommand(**common, name="transcribe", args=relative[:200], is_admin=True, is_operator=True,
                             refusal=why_not_read(data_dir, relative) if relative else "no_such_file")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        digest, size = audio.save_file(path)
        refused = ""
    except TooLarge:
        digest, size, refused = "", path.stat().st_size, "too_large"
    return ReceiveAudio(**common, audio_hash=digest, content_type=content_type, size_bytes=size,
                        filename=path.name, refused=refused)


EXAMPLE_FILES = (".jsonl", ".csv", ".txt")


def _names_file(args: str) -> bool:
    """``!train FILE``: a file of examples instead of ``PROMPT => ANSWER``."""
    return "=>" not in args and args.strip().lower().endswith(EXAMPLE_FILES) and len(args.split()) == 1


def _import_command(common: dict, name: str, relative: str, imports: AudioStore, data_dir: Path) -> InvokeCommand:
    """The console's attachment: a file inside the data dir, stored in imports/ as Discord's would be."""
    path = inside_data_dir(data_dir, relative)
    if path is None:
        return InvokeCommand(**common, name=name, is_admin=True, is_operator=True, attachment_name=relative[:200],
                             attachment_refused=why_not_read(data_dir, relative))
    try:
        digest, _ = imports.save_file(path)
    except TooLarge:
        return InvokeCommand(**common, name=name, is_admin=True, is_operator=True, attachment_name=path.name,
                             attachment_refused="too_large")
    return InvokeCommand(**common, name=name, is_admin=True, is_operator=True, attachment_name=path.name, attachment_hash=digest)


def _user() -> str:
    try:
        return getpass.getuser() or "you"
    except Exception:  # no user name in a bare container
        return "you"
