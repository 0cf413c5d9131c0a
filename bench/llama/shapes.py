"""Model shapes for the llama.cpp benchmark, and the tensors each one has.

Pure logic (no numpy): used by the GGUF writer, by the bound computation and by
the tests. Tensors are listed in the order llama.cpp creates them for the
"llama" architecture (token embedding, output norm, output, then each layer),
which is the order they take in llama.cpp's single weight buffer per device.
The weight matrices take the model's weight type (Q8_0 or BF16); norms and the
MoE router stay F32, as llama.cpp's converter leaves them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GgmlType:
    """A ggml tensor type: its name (as gguf-py's GGMLQuantizationType spells it, lower
    case) and its block, the unit its rows are stored in (ggml's type traits)."""

    name: str
    block: int  # elements per block
    block_bytes: int

    def nbytes(self, n_elements: int) -> int:
        if n_elements % self.block:
            raise ValueError(f"{n_elements} elements: not a whole number of {self.name} blocks "
                             f"of {self.block}")
        return n_elements // self.block * self.block_bytes


F32 = GgmlType("f32", 1, 4)
BF16 = GgmlType("bf16", 1, 2)
Q8_0 = GgmlType("q8_0", 32, 34)  # fp16 scale + 32 int8
# The types the weight matrices of a benchmark model can take (run.py's and make_gguf.py's --type).
WEIGHT_TYPES = {t.name: t for t in (Q8_0, BF16)}


@dataclass(frozen=True)
class Shape:
    name: str
    n_embd: int
    n_ff: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    n_ctx_train: int = 4096
    n_expert: int = 0
    n_expert_used: int = 0

    @property
    def n_embd_kv(self) -> int:
        return self.n_embd // self.n_head * self.n_head_kv


@dataclass(frozen=True)
class Tensor:
    name: str
    dims: tuple[int, ...]  # numpy order: the last is the row (contiguous) dimension
    ggml_type: GgmlType
    read_fraction: float  # share of the tensor one decoded token reads
    layer: int  # -1 outside the repeating layers

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.ggml_type.nbytes(self.n_elements)

    @property
    def is_expert(self) -> bool:
        return "_exps" in self.name


# A Mistral-7B shape (GQA, vocab 32000): 7.70 GB in Q8_0, as in issue 12; 14.48 GB in BF16,
# bench/models.py's "dense".
DENSE = Shape("dense", n_embd=4096, n_ff=14336, n_layer=32, n_head=32, n_head_kv=8,
              n_vocab=32000)
# Mixtral-style: 8 experts of 3584, top-2, 18 layers: 7.82 GB in Q8_0; 14.72 GB in BF16,
# bench/models.py's "moe".
MOE = Shape("moe", n_embd=4096, n_ff=3584, n_layer=18, n_head=32, n_head_kv=8,
            n_vocab=32000, n_expert=8, n_expert_used=2)
# For checking the scripts without a GPU (a few hundred KB).
TINY = Shape("tiny", n_embd=64, n_ff=128, n_layer=2, n_head=4, n_head_kv=2, n_vocab=320,
             n_ctx_train=256)
TINY_MOE = Shape("tiny-moe", n_embd=64, n_ff=64, n_layer=2, n_head=4, n_head_kv=2,
                 n_vocab=320, n_ctx_train=256, n_expert=4, n_expert_used=2)

SHAPES = {s.name: s for s in (DENSE, MOE, TINY, TINY_MOE)}


def tensors(shape: Shape, weight_type: GgmlType) -> list[Tensor]:
    """Every tensor of the model with its weight matrices in weight_type, in llama.cpp's
    creation order."""
    e, f, kv, v = shape.n_embd, shape.n_ff, shape.n_embd_kv, shape.n_vocab
    w = weight_type
    out = [
        # llama.cpp keeps the input embedding on the CPU and reads one row per token.
        Tensor("token_embd.weight", (v, e), w, 0.0, -1),
        Tensor("output_norm.weight", (e,), F32, 1.0, -1),
        Tensor("output.weight", (v, e), w, 1.0, -1),
    ]
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        out += [
            Tensor(p + "attn_norm.weight", (e,), F32, 1.0, i),
            Tensor(p + "attn_q.weight", (e, e), w, 1.0, i),
            Tensor(p + "attn_k.weight", (kv, e), w, 1.0, i),
            Tensor(p + "attn_v.weight", (kv, e), w, 1.0, i),
            Tensor(p + "attn_output.weight", (e, e), w, 1.0, i),
            Tensor(p + "ffn_norm.weight", (e,), F32, 1.0, i),
        ]
        if shape.n_expert:
            share = shape.n_expert_used / shape.n_expert
            n = shape.n_expert
            out += [
                Tensor(p + "ffn_gate_inp.weight", (n, e), F32, 1.0, i),
                Tensor(p + "ffn_gate_exps.weight", (n, f, e), w, share, i),
                Tensor(p + "ffn_down_exps.weight", (n, e, f), w, share, i),
                Tensor(p + "ffn_up_exps.weight", (n, f, e), w, share, i),
            ]
        else:
            out += [
                Tensor(p + "ffn_gate.weight", (f, e), w, 1.0, i),
                Tensor(p + "ffn_down.weight", (e, f), w, 1.0, i),
                Tensor(p + "ffn_up.weight", (f, e), w, 1.0, i),
            ]
    return out


def model_bytes(shape: Shape, weight_type: GgmlType) -> int:
    return sum(t.nbytes for t in tensors(shape, weight_type))
