"""People's words in the log, encrypted with a key per person (crypto-shredding).

Fields that are someone's words (message text, transcripts, corrections, names) are stored as
AES-GCM ciphertext under that person's key; the keys live outside the log (``events.keys``).
Forgetting a person deletes their key: what they said stays in the log as ciphertext nobody can read
(so the hash chain still verifies) and reads back as ``(forgotten)``.
"""
from __future__ import annotations

import base64
import os
from typing import Any, Protocol

import orjson

FORGOTTEN = "(forgotten)"
TEXT, JSON = "enc1:", "enc1j:"  # an encrypted string; an encrypted JSON value (a tuple of dicts)

# Per event type: which fields are whose words (field -> the field that holds that person's id).
PERSONAL: dict[str, dict[str, str]] = {
    "MessageReceived": {"text": "author_id", "author_name": "author_id", "heard": "author_id"},
    "ResponseGenerated": {"text": "asker_id", "heard": "asker_id"},  # an answer may repeat the question
    "AudioReceived": {"author_name": "author_id", "text": "author_id", "filename": "author_id"},
    "TranscriptionCompleted": {"text": "speaker_id", "words": "speaker_id"},
    "CommandAnswered": {"text": "author_id"},  # "Hi Ada!", or what a command echoed back
    "CorrectionRecorded": {"question": "asker_id", "original": "asker_id", "corrected": "by", "by_name": "by"},
    "FeedbackRecorded": {"text": "by", "by_name": "by"},
    "ExamplesAdded": {"examples": "author_id"},
}


class Keys(Protocol):
    def key_for(self, person: str) -> bytes:
        """The person's key, made on first use."""

    def key_of(self, person: str) -> bytes | None:
        """The person's key, or None when they were forgotten (or never had one)."""


def seal(type_name: str, data: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """``data`` with the personal fields of ``type_name`` encrypted (a copy; ``data`` is not changed)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    fields = PERSONAL.get(type_name)
    if not fields:
        return data
    sealed = dict(data)
    for name, owner in fields.items():
        value, person = data.get(name), data.get(owner)
        if not value or not person:
            continue
        plain, marker = (value.encode(), TEXT) if isinstance(value, str) else (orjson.dumps(value), JSON)
        nonce = os.urandom(12)
        secret = AESGCM(keys.key_for(person)).encrypt(nonce, plain, f"{person}|{type_name}|{name}".encode())
        sealed[name] = marker + base64.b64encode(nonce + secret).decode()
    return sealed


def unseal(type_name: str, data: dict[str, Any], keys: Keys | None) -> dict[str, Any]:
    """``data`` (changed in place) with its encrypted fields read back, or ``(forgotten)`` without a key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    for name, owner in PERSONAL.get(type_name, {}).items():
        value = data.get(name)
        if not isinstance(value, str) or not value.startswith((TEXT, JSON)):
            continue
        person = data.get(owner) or ""
        is_json = value.startswith(JSON)
        key = keys.key_of(person) if keys is not None else None
        plain = None
        if key is not None:
            raw = base64.b64decode(value[len(JSON if is_json else TEXT):])
            try:
                plain = AESGCM(key).decrypt(raw[:12], raw[12:], f"{person}|{type_name}|{name}".encode())
            except InvalidTag:
                plain = None
        if plain is None:
            data[name] = [] if is_json else FORGOTTEN
        else:
            data[name] = orjson.loads(plain) if is_json else plain.decode()
    return data
