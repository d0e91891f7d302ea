"""GGUF in and out: dequantize a GGUF base to an HF folder, write a Qwen2 model or a LoRA adapter as GGUF.

The adapter layout is llama.cpp's (as its convert_lora_to_gguf.py writes it): ``general.type =
adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, and for every adapted weight
``<gguf tensor name>.lora_a`` (rank x in) and ``.lora_b`` (out x rank).
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

ARCH = "qwen2"


def _writer(path: Path):
    import gguf

    return gguf.GGUFWriter(str(path), arch=ARCH)


def _finish(writer, target: Path, tmp: Path) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, target)


def _tmp_beside(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


@lru_cache(maxsize=None)
def _name_map(n_blocks: int):
    """gguf's HF -> GGUF tensor name map for Qwen2 (about 7 ms to build: once per model size, not per tensor)."""
    import gguf

    return gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, n_blocks)


def gguf_tensor_name(hf_name: str, n_blocks: int) -> str:
    """llama.cpp's name for an HF Qwen2 tensor.

    ``model.layers.0.self_attn.q_proj.weight`` -> ``blk.0.attn_q.weight``.
    """
    name = _name_map(n_blocks).get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ValueError(f"no GGUF name for tensor {hf_name}")
    return name


def write_lora_gguf(adapter_dir: Path, n_blocks: int, target: Path, dtype: str = "f32") -> Path:
    """Convert a PEFT LoRA adapter folder (adapter_config.json + safetensors) to a GGUF adapter (f32 or f16)."""
    np_dtype = {"f32": np.float32, "f16": np.float16}[dtype]
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, value in tensors.items():
        for marker, key in ((".lora_A.weight", "a"), (".lora_B.weight", "b")):
            if name.endswith(marker):
                base = name[: -len(marker)].replace("base_model.model.", "", 1) + ".weight"
                pairs.setdefault(base, {})[key] = value
                break
        else:
            raise ValueError(f"unexpected tensor {name} in {adapter_dir}: only lora_A/lora_B are supported")
    tmp = _tmp_beside(target)
    writer = _writer(tmp)
    import gguf

    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    for base, pair in sorted(pairs.items()):
        if set(pair) != {"a", "b"}:
            raise ValueError(f"{base}: lora_A or lora_B is missing")
        name = gguf_tensor_name(base, n_blocks)
        writer.add_tensor(name + ".lora_a", pair["a"].astype(np_dtype))
        writer.add_tensor(name + ".lora_b", pair["b"].astype(np_dtype))
    _finish(writer, target, tmp)
    return target


LORA_MODULES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def read_lora_gguf(gguf_path: Path, adapter_dir: Path, lora_dropout: float = 0.0) -> Path:
    """Convert a GGUF LoRA adapter (llama.cpp's layout, as ``write_lora_gguf`` writes it) to a PEFT folder.

    The inverse of ``write_lora_gguf``: the shipped adapter exists only as GGUF, and expert iteration and
    continued training need it in PEFT. Rank comes from the tensor shapes, alpha from the header.
    """
    import gguf
    from safetensors.numpy import save_file

    if adapter_dir.exists():
        raise FileExistsError(f"{adapter_dir} exists: convert into a new folder")
    reader = gguf.GGUFReader(str(gguf_path))
    kind = reader.fields.get("adapter.type")
    if kind is None or kind.contents() != "lora":
        raise ValueError(f"{gguf_path} is not a GGUF LoRA adapter (no adapter.type = lora)")
    alpha = float(reader.fields["adapter.lora.alpha"].contents())
    arrays = {t.name: np.array(t.data, dtype=np.float32) for t in reader.tensors}
    n_blocks = 1 + max(int(name.split(".")[1]) for name in arrays if name.startswith("blk."))
    hf_of = {}
    for block in range(n_blocks):
        for module in LORA_MODULES:
            hf_name = f"model.layers.{block}.{module}"
            hf_of[gguf_tensor_name(hf_name + ".weight", n_blocks)] = hf_name
    tensors: dict[str, np.ndarray] = {}
    ranks, modules = set(), set()
    for name, value in arrays.items():
        base, _, part = name.rpartition(".")
        if part not in ("lora_a", "lora_b") or base not in hf_of:
            raise ValueError(f"unexpected tensor {name} in {gguf_path}")
        hf_name = hf_of[base]
        modules.add(hf_name.rsplit(".", 1)[1])
        ranks.add(value.shape[0] if part == "lora_a" else value.shape[1])
        tensors[f"base_model.model.{hf_name}.lora_{part[-1].upper()}.weight"] = np.ascontiguousarray(value)
    if len(ranks) != 1:
        raise ValueError(f"{gguf_path}: tensors of several ranks {sorted(ranks)}")
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": ranks.pop(), "lora_alpha": alpha,
              "lora_dropout": lora_dropout, "target_modules": sorted(modules), "bias": "none",
              "base_model_name_or_path": None, "inference_mode": False}
    tmp = Path(tempfile.mkdtemp(prefix=".peft-", dir=adapter_dir.parent if adapter_dir.parent.exists() else None))
    save_file(tensors, str(tmp / "adapter_model.safetensors"))
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, adapter_dir)
    return adapter_dir


def peft_adapter_dir(adapter: Path, scratch: Path, lora_dropout: float = 0.0) -> Path:
    """A PEFT folder for ``adapter``: the folder itself, or a GGUF adapter converted into ``scratch``."""
    if adapter.is_dir():
        return adapter
    if adapter.suffix != ".gguf":
        raise ValueError(f"{adapter}: expected a PEFT adapter folder or a .gguf LoRA adapter")
    target = scratch / f"{adapter.stem}-peft"
    return target if (target / "adapter_config.json").is_file() else read_lora_gguf(adapter, target, lora_dropout)


def _copy_tokenizer_fields(writer, tokenizer_gguf: Path) -> None:
    import gguf

    reader = gguf.GGUFReader(str(tokenizer_gguf))
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        value = field.contents()
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, value, vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, value, vtype)


def tokenizer_size(tokenizer_gguf: Path) -> int:
    """Number of tokens in a GGUF's vocabulary."""
    import gguf

    reader = gguf.GGUFReader(str(tokenizer_gguf))
    return len(reader.fields["tokenizer.ggml.tokens"].data)


def write_model_gguf(model, tokenizer_gguf: Path, target: Path, name: str = "utgen") -> Path:
    """Write an HF Qwen2ForCausalLM (weights as F32, 1-D tensors F32) with the tokenizer of another GGUF."""
    import gguf

    config = model.config
    tmp = _tmp_beside(target)
    writer = _writer(tmp)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _copy_tokenizer_fields(writer, tokenizer_gguf)
    state = model.state_dict()
    for hf_name, tensor in state.items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        array = tensor.detach().float().cpu().numpy()
        writer.add_tensor(gguf_tensor_name(hf_name, config.num_hidden_layers), array)
    _finish(writer, target, tmp)
    return target


def dequantize_gguf(gguf_path: Path, hf_dir: Path, dtype: str = "bf16") -> Path:
    """Load a GGUF base through transformers (dequantized) and save it once as a normal HF folder."""
    if (hf_dir / "config.json").is_file():
        return hf_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch_dtype)
    model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=".hf-", dir=hf_dir.parent if hf_dir.parent.exists() else None))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    hf_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, hf_dir)
    return hf_dir
