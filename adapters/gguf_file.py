"""What a GGUF model file says about itself, read from its header before any runtime touches it: whether it is
a GGUF file at all, whole, a chat model, how long a context it was trained for, and how much memory its
context would take. llama.cpp answers every such problem with one "failed to load"; a user deserves the reason.

The format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): ``GGUF``, a version, the tensor and
key/value counts, the key/values, the tensor infos, then the tensor data from an aligned offset.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
MAX_STRING = 64 * 1024 * 1024  # a chat template or a vocabulary entry is far smaller: past this, it is damage
MAX_ITEMS = 10_000_000
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class NotAModel(ValueError):
    """Why the file cannot be the model: ``reason`` is missing, not_gguf, truncated or not_chat."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class ModelFile:
    path: Path
    size: int
    architecture: str
    name: str
    context_length: int  # what it was trained for (0: not said)
    layers: int
    kv_width: int  # key/value values per token per layer, keys and values together
    chat_template: bool
    heads: int = 0  # attention heads (0: not said)
    kv_heads: int = 0  # ... of keys and values

    def kv_cache_bytes(self, context: int) -> int:
        """The key/value cache of ``context`` tokens in total (f16), the memory the runtime adds to the file's."""
        return context * self.layers * self.kv_width * 2


def read(path: Path) -> ModelFile:
    """The header of the GGUF file at ``path``, or ``NotAModel`` saying what is wrong with it."""
    try:
        size = path.stat().st_size
        f = path.open("rb")
    except FileNotFoundError:
        raise NotAModel("missing", f"{path} does not exist") from None
    except OSError as e:
        raise NotAModel("missing", f"{path} cannot be read ({e.strerror or e})") from None
    with f:
        if f.read(4) != MAGIC:
            raise NotAModel("not_gguf", f"{path} is not a GGUF model file")
        try:
            return _header(f, path, size)
        except (struct.error, UnicodeDecodeError, EOFError, ValueError) as e:
            raise NotAModel("truncated", f"{path} is truncated or damaged ({e})") from None


def _header(f: BinaryIO, path: Path, size: int) -> ModelFile:
    version, tensors, count = _unpack(f, "<I"), _unpack(f, "<Q"), _unpack(f, "<Q")
    if version not in (2, 3) or tensors > MAX_ITEMS or count > MAX_ITEMS:
        raise ValueError(f"GGUF version {version} with {tensors} tensors and {count} keys")
    meta: dict[str, object] = {}
    for _ in range(count):
        key = _string(f)
        meta[key] = _value(f, _unpack(f, "<I"), keep=not key.startswith("tokenizer.ggml."))
    last_end = 0
    for _ in range(tensors):  # name, dimensions, type, offset: where the last tensor starts
        _string(f)
        dims = _unpack(f, "<I")
        if dims > 8:
            raise ValueError(f"a tensor with {dims} dimensions")
        f.seek(8 * dims + 4, 1)
        last_end = max(last_end, _unpack(f, "<Q"))
    alignment = int(meta.get("general.alignment", 32) or 32)  # type: ignore[call-overload]
    data_start = -(-f.tell() // alignment) * alignment
    if data_start + last_end >= size:
        raise ValueError(f"its tensors need more than its {size:,} bytes")
    arch = str(meta.get("general.architecture", ""))
    heads = int(meta.get(f"{arch}.attention.head_count", 0) or 0)  # type: ignore[call-overload]
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads) or heads)  # type: ignore[call-overload]
    width = int(meta.get(f"{arch}.embedding_length", 0) or 0)  # type: ignore[call-overload]
    return ModelFile(path=path, size=size, architecture=arch, name=str(meta.get("general.name", path.stem)),
                     context_length=int(meta.get(f"{arch}.context_length", 0) or 0),  # type: ignore[call-overload]
                     layers=int(meta.get(f"{arch}.block_count", 0) or 0),  # type: ignore[call-overload]
                     kv_width=2 * (width // heads) * kv_heads if heads else 2 * width,
                     chat_template=bool(meta.get("tokenizer.chat_template")), heads=heads, kv_heads=kv_heads)


def _unpack(f: BinaryIO, form: str) -> int:
    size = struct.calcsize(form)
    data = f.read(size)
    if len(data) < size:
        raise EOFError("the file ends inside its header")
    return struct.unpack(form, data)[0]


def _string(f: BinaryIO) -> str:
    length = _unpack(f, "<Q")
    if length > MAX_STRING:
        raise ValueError(f"a string of {length:,} bytes")
    data = f.read(length)
    if len(data) < length:
        raise EOFError("the file ends inside its header")
    return data.decode("utf-8")


def _value(f: BinaryIO, kind: int, keep: bool = True) -> object:
    if kind in _SCALARS:
        return _unpack(f, _SCALARS[kind])
    if kind == STRING:
        return _string(f)
    if kind == ARRAY:
        item, n = _unpack(f, "<I"), _unpack(f, "<Q")
        if n > MAX_ITEMS or item == ARRAY and n > 1024:
            raise ValueError(f"an array of {n:,} items")
        if item in _SCALARS and not keep:  # a vocabulary's scores and types: skipped, not built
            f.seek(struct.calcsize(_SCALARS[item]) * n, 1)
            return None
        values = [_value(f, item, keep) for _ in range(n)]
        return values if keep else None
    raise ValueError(f"a value of unknown type {kind}")
