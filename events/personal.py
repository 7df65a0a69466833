"""People's words in the log, encrypted with a key per person (crypto-shredding).

Fields that are someone's words (message text, transcripts, corrections, names) are stored as
AES-GCM ciphertext under that person's key; the keys live outside the log (``events.keys``).
Forgetting a person deletes their key: what they said stays in the log as ciphertext nobody can read
(so the hash chain still verifies) and reads back as ``(forgotten)``.
"""
from __future__ import annotations

import os
import threading
from binascii import a2b_base64, b2a_base64
from typing import Any, Protocol

import orjson

FORGOTTEN = "(forgotten)"
SEALED = "sealed"  # the stored field holding, per person, their fields' ciphertext
JSON_FIELDS = frozenset({"words", "examples"})  # lists of dicts: forgotten, they read back empty

# Per event type: which fields are whose words (field -> the field holding that person's id, or several:
# then it is sealed under each of their keys in turn, and forgetting any one of them erases it).
PERSONAL: dict[str, dict[str, str | tuple[str, ...]]] = {
    "MessageReceived": {"text": "author_id", "author_name": "author_id", "heard": "author_id"},
    "ResponseGenerated": {"text": "asker_id", "heard": "asker_id"},  # an answer may repeat the question
    "AnswerCutOff": {"said": "asker_id"},  # the part of an answer that was said aloud
    "AudioReceived": {"author_name": "author_id", "text": "author_id", "filename": "author_id"},
    "TranscriptionCompleted": {"text": "speaker_id", "words": "speaker_id"},
    "UtteranceHeard": {"transcript": "speaker_id", "speaker_name": "speaker_id"},
    "CommandAnswered": {"text": "author_id"},  # "Hi Ada!", or what a command echoed back
    "CorrectionRecorded": {"question": "asker_id", "original": "asker_id", "corrected": "by", "by_name": "by"},
    "FeedbackRecorded": {"text": "by", "by_name": "by"},
    "ExamplesAdded": {"examples": ("author_id", "subject_id")},
}


class Keys(Protocol):
    def cipher_for(self, person: str) -> Any:
        """The AES-GCM cipher of the person's key, made on first use."""

    def cipher_of(self, person: str) -> Any | None:
        """The person's cipher, or None when they were forgotten (or never had a key)."""


_nonces: list[bytes] = []
_nonce_lock = threading.Lock()


def _nonce() -> bytes:
    """12 fresh random bytes, never handed out twice (read from the OS in bulk: one system call per
    4,096 nonces; actors on several threads seal at once)."""
    with _nonce_lock:
        if not _nonces:
            pool = os.urandom(12 * 4096)
            _nonces.extend(pool[i:i + 12] for i in range(0, len(pool), 12))
        return _nonces.pop()


def owners(owner: str | tuple[str, ...]) -> tuple[str, ...]:
    return (owner,) if isinstance(owner, str) else owner


def seal(type_name: str, data: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """A copy of ``data`` whose personal fields (non-empty ones) are replaced by one ciphertext per
    group of owners under ``sealed``: ``{"author_id": "<base64 nonce + AES-GCM ciphertext>"}`` (owners
    joined by ``+`` when a field is sealed under several keys, one layer each)."""
    fields = PERSONAL.get(type_name)
    if not fields:
        return data
    sealed = dict(data)
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for name, owner in fields.items():
        value = data.get(name)
        present = tuple(o for o in owners(owner) if data.get(o))
        if value and present:
            groups.setdefault(present, {})[name] = value
            del sealed[name]
    if groups:
        secrets = {}
        for group, values in groups.items():
            blob = orjson.dumps(values)
            for owner in group:
                person, nonce = data[owner], _nonce()
                blob = nonce + keys.cipher_for(person).encrypt(nonce, blob, f"{person}|{type_name}".encode())
            secrets["+".join(group)] = b2a_base64(blob, newline=False).decode()
        sealed[SEALED] = secrets
    return sealed


_AAD: dict[tuple[str, str], bytes] = {}  # the additional data a person's field is sealed with, by (person, type)


def unseal(type_name: str, data: dict[str, Any], keys: Keys | None) -> dict[str, Any]:
    """``data`` (changed in place) with the sealed fields back, or ``(forgotten)`` (an empty list for
    list fields) where a key they were sealed with is gone. Reading the log runs this once per event."""
    secrets = data.pop(SEALED, None)
    if not secrets:
        return data
    for joined, secret in secrets.items():
        blob: bytes | None = a2b_base64(secret)
        for owner in reversed(joined.split("+")) if "+" in joined else (joined,):  # outer layer: the last owner
            person = data.get(owner) or ""
            cipher = keys.cipher_of(person) if keys is not None else None
            if cipher is None:
                blob = None
                break
            aad = _AAD.get((person, type_name))
            if aad is None:  # (reading the log asks this once per event: made once per person and type)
                if len(_AAD) > 100_000:
                    _AAD.clear()
                aad = _AAD[person, type_name] = f"{person}|{type_name}".encode()
            try:
                blob = cipher.decrypt(blob[:12], blob[12:], aad)  # type: ignore[index]
            except _invalid_tag():
                blob = None
                break
        if blob is not None:
            data.update(orjson.loads(blob))
        else:  # forgotten: every field of theirs that was sealed reads as such
            group = tuple(joined.split("+"))
            data.update({name: [] if name in JSON_FIELDS else FORGOTTEN
                         for name, who in PERSONAL.get(type_name, {}).items()
                         if tuple(o for o in owners(who) if data.get(o)) == group and name not in data})
    return data


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag
