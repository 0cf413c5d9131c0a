"""Model shapes for the llama.cpp benchmark, and the tensors each one has.

Pure logic (no numpy): used by the GGUF writer, by the bound computation and by
the tests. Tensors are listed in the order llama.cpp creates them for the
"llama" architecture (token embedding, output norm, output, then each layer),
which is the order they take in llama.cpp's single weight buffer per device.
"""

from __future__ import annotations

from dataclasses import dataclass

Q8_0_BLOCK = 32
Q8_0_BLOCK_BYTES = 34  # fp16 scale + 32 int8


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
    quantized: bool  # Q8_0 when true, F32 otherwise
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
        if self.quantized:
            return self.n_elements // Q8_0_BLOCK * Q8_0_BLOCK_BYTES
        return self.n_elements * 4

    @property
    def is_expert(self) -> bool:
        return "_exps" in self.name


# A Mistral-7B shape (GQA, vocab 32000): 7.69 GB in Q8_0, as in issue 12.
DENSE = Shape("dense", n_embd=4096, n_ff=14336, n_layer=32, n_head=32, n_head_kv=8,
              n_vocab=32000)
# Mixtral-style: 8 experts of 3584, top-2, 18 layers: 7.8 GB in Q8_0.
MOE = Shape("moe", n_embd=4096, n_ff=3584, n_layer=18, n_head=32, n_head_kv=8,
            n_vocab=32000, n_expert=8, n_expert_used=2)
# For checking the scripts without a GPU (a few hundred KB).
TINY = Shape("tiny", n_embd=64, n_ff=128, n_layer=2, n_head=4, n_head_kv=2, n_vocab=320,
             n_ctx_train=256)
TINY_MOE = Shape("tiny-moe", n_embd=64, n_ff=64, n_layer=2, n_head=4, n_head_kv=2,
                 n_vocab=320, n_ctx_train=256, n_expert=4, n_expert_used=2)

SHAPES = {s.name: s for s in (DENSE, MOE, TINY, TINY_MOE)}


def tensors(shape: Shape) -> list[Tensor]:
    """Every tensor of the model, in llama.cpp's creation order."""
    e, f, kv, v = shape.n_embd, shape.n_ff, shape.n_embd_kv, shape.n_vocab
    out = [
        # llama.cpp keeps the input embedding on the CPU and reads one row per token.
        Tensor("token_embd.weight", (v, e), True, 0.0, -1),
        Tensor("output_norm.weight", (e,), False, 1.0, -1),
        Tensor("output.weight", (v, e), True, 1.0, -1),
    ]
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        out += [
            Tensor(p + "attn_norm.weight", (e,), False, 1.0, i),
            Tensor(p + "attn_q.weight", (e, e), True, 1.0, i),
            Tensor(p + "attn_k.weight", (kv, e), True, 1.0, i),
            Tensor(p + "attn_v.weight", (kv, e), True, 1.0, i),
            Tensor(p + "attn_output.weight", (e, e), True, 1.0, i),
            Tensor(p + "ffn_norm.weight", (e,), False, 1.0, i),
        ]
        if shape.n_expert:
            share = shape.n_expert_used / shape.n_expert
            n = shape.n_expert
            out += [
                Tensor(p + "ffn_gate_inp.weight", (n, e), False, 1.0, i),
                Tensor(p + "ffn_gate_exps.weight", (n, f, e), True, share, i),
                Tensor(p + "ffn_down_exps.weight", (n, e, f), True, share, i),
                Tensor(p + "ffn_up_exps.weight", (n, f, e), True, share, i),
            ]
        else:
            out += [
                Tensor(p + "ffn_gate.weight", (f, e), True, 1.0, i),
                Tensor(p + "ffn_down.weight", (e, f), True, 1.0, i),
                Tensor(p + "ffn_up.weight", (f, e), True, 1.0, i),
            ]
    return out


def model_bytes(shape: Shape) -> int:
    return sum(t.nbytes for t in tensors(shape))
