"""A LoRA adapter trained with PEFT, written as a llama.cpp LoRA adapter (GGUF) that the local runtime loads beside
its base model: the same thing llama.cpp's ``convert_lora_to_gguf.py`` does, for the llama architecture (SmolLM2,
Llama, and the other models llama.cpp reads as ``llama``), with the ``gguf`` package.

Two things make it right: the tensor names llama.cpp uses (``blk.N.attn_q.weight.lora_a``), and the order of the
rows of the query and key projections, which llama.cpp's converter permutes for its rotary embedding (and
transformers' GGUF loader un-permutes on load): an adapter's ``lora_B`` of those projections is permuted the same
way, since the permutation of ``B @ A`` is the permutation of ``B``'s rows.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

# PEFT's module names (transformers' llama) -> llama.cpp's tensor names
TENSOR_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                "mlp.down_proj": "ffn_down"}
TARGET_MODULES = [name.rsplit(".", 1)[1] for name in TENSOR_NAMES]
_PEFT_KEY = re.compile(r"base_model\.model\.model\.layers\.(\d+)\.(.+)\.lora_([AB])\.weight")


class NotAnAdapter(ValueError):
    """The folder holds no LoRA adapter this writer knows (a tensor of a module llama.cpp has no name for)."""


def _permuted(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for a query or key projection of ``heads`` heads (its converter's ``permute``)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def write(adapter_dir: Path, target: Path, heads: int, kv_heads: int) -> int:
    """Write the PEFT adapter saved in ``adapter_dir`` to ``target`` as a GGUF LoRA adapter for a llama model of
    ``heads`` attention heads (``kv_heads`` for keys and values). Returns the number of tensors written."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    writer = gguf.GGUFWriter(str(target), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(config["lora_alpha"]))
    for key in sorted(tensors):
        match = _PEFT_KEY.fullmatch(key)
        if match is None or match.group(2) not in TENSOR_NAMES:
            raise NotAnAdapter(f"{key} is not a LoRA tensor of a llama attention or MLP projection")
        layer, module, side = match.groups()
        weights = tensors[key].astype(np.float32)
        if side == "B" and module == "self_attn.q_proj":
            weights = _permuted(weights, heads)
        elif side == "B" and module == "self_attn.k_proj":
            weights = _permuted(weights, kv_heads)
        writer.add_tensor(f"blk.{layer}.{TENSOR_NAMES[module]}.weight.lora_{side.lower()}",
                          np.ascontiguousarray(weights))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(tensors)
