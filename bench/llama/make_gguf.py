"""Write a random-weight Q8_0 or BF16 GGUF model for llama.cpp with the bundled gguf-py.

  python3 bench/llama/make_gguf.py --gguf-py SRC/gguf-py --shape dense [--type bf16] OUT.gguf

Weights are random, about 0.02 standard deviation: Q8_0 int8 blocks with one fp16
scale, or BF16 values of a normal distribution; norms are 1 (F32). Their values do not
change the speed, only their size and placement. The data repeats with a period of
64 MiB (shifted per tensor) so that writing 7.7 GB (Q8_0) or 14.5 GB (BF16) costs what
the disk costs. The vocabulary is a small SentencePiece-style ("llama")
one: 3 special tokens, 256 byte tokens, then short words, so that llama.cpp can
tokenize a prompt and print what it generates.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shapes import BF16, F32, Q8_0, SHAPES, WEIGHT_TYPES, GgmlType, Shape, tensors

if TYPE_CHECKING:
    import numpy as np

PERIOD_BYTES = 64 << 20
WEIGHT_STD = 0.02
SCALE = WEIGHT_STD / 73.3  # Q8_0: int8 uniform on [-127, 127] has a standard deviation of 73.3


def vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary of exactly n_vocab tokens."""
    if n_vocab < 300:
        raise ValueError(f"n_vocab {n_vocab}: need at least 300 tokens")
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256  # UNKNOWN, CONTROL, CONTROL, BYTE
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: list[str] = ["\u2581"] + list(letters) + ["\u2581" + c for c in letters]
    for a in letters:
        for b in letters:
            words += [a + b, "\u2581" + a + b]
    for a in letters:
        for b in letters:
            for c in letters:
                words += [a + b + c, "\u2581" + a + b + c]
    need = n_vocab - len(toks)
    if need > len(words):
        raise ValueError(f"n_vocab {n_vocab}: at most {len(toks) + len(words)} tokens")
    toks += words[:need]
    types += [1] * need  # NORMAL
    scores = [0.0] * 259 + [-float(i) for i in range(need)]
    return toks, scores, types


def period_bytes(weight_type: GgmlType, rng: np.random.Generator) -> np.ndarray:
    """Random weights of weight_type as bytes: the whole blocks that fit in PERIOD_BYTES."""
    import numpy as np

    n_blocks = PERIOD_BYTES // weight_type.block_bytes
    if weight_type == Q8_0:
        period = np.empty((n_blocks, Q8_0.block_bytes), dtype=np.uint8)
        quants = rng.integers(-127, 128, size=(n_blocks, Q8_0.block), dtype=np.int8)
        period[:, 2:] = quants.view(np.uint8)
        period[:, :2] = np.frombuffer(np.float16(SCALE).tobytes(), dtype=np.uint8)
    elif weight_type == BF16:
        bits = (rng.standard_normal(n_blocks, dtype=np.float32) * WEIGHT_STD).view(np.uint32)
        # float32 to bfloat16, rounding to nearest even (the values are finite)
        period = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
    else:
        raise ValueError(f"no random weights for {weight_type.name}")
    return period.reshape(-1).view(np.uint8)


def write(gguf, shape: Shape, weight_type: GgmlType, path: Path, seed: int = 1) -> int:
    import numpy as np

    rng = np.random.default_rng(seed)
    period = period_bytes(weight_type, rng)
    period_blocks = period.size // weight_type.block_bytes
    ones = None

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"spillway-bench-{shape.name}")
    w.add_file_type(gguf.LlamaFileType[f"MOSTLY_{weight_type.name.upper()}"])
    w.add_vocab_size(shape.n_vocab)
    w.add_context_length(shape.n_ctx_train)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_rope_dimension_count(shape.n_embd // shape.n_head)
    w.add_layer_norm_rms_eps(1e-5)
    if shape.n_expert:
        w.add_expert_count(shape.n_expert)
        w.add_expert_used_count(shape.n_expert_used)
    toks, scores, types = vocab(shape.n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)

    ts = tensors(shape, weight_type)
    for t in ts:
        if t.ggml_type == F32:
            w.add_tensor_info(t.name, t.dims, np.dtype(np.float32), t.nbytes)
        else:  # raw bytes: gguf-py turns the row's byte length back into elements
            tt = t.ggml_type
            byte_dims = t.dims[:-1] + (tt.nbytes(t.dims[-1]),)
            w.add_tensor_info(t.name, byte_dims, np.dtype(np.uint8), t.nbytes,
                              raw_dtype=gguf.GGMLQuantizationType[tt.name.upper()])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for i, t in enumerate(ts):
        if t.ggml_type != F32:
            data = np.empty(t.nbytes, dtype=np.uint8)
            start = (i * 7919 % period_blocks) * weight_type.block_bytes
            pos = 0
            while pos < t.nbytes:
                n = min(t.nbytes - pos, period.size - start)
                data[pos:pos + n] = period[start:start + n]
                pos += n
                start = 0
        elif t.name.endswith("gate_inp.weight"):
            data = rng.standard_normal(t.dims, dtype=np.float32)
        else:
            if ones is None or ones.size < t.n_elements:
                ones = np.ones(t.n_elements, dtype=np.float32)
            data = ones[:t.n_elements]
        w.write_tensor_data(data)
    w.close()
    return path.stat().st_size


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf-py", required=True, help="the gguf-py folder of the llama.cpp source")
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--type", default=Q8_0.name, choices=sorted(WEIGHT_TYPES),
                    help="the weight matrices' type (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    if not (Path(a.gguf_py) / "gguf" / "gguf_writer.py").is_file():
        ap.error(f"--gguf-py {a.gguf_py}: no gguf/gguf_writer.py there")
    sys.path.insert(0, str(a.gguf_py))
    import gguf  # noqa: E402  (from the llama.cpp source, not installed)

    t0 = time.monotonic()
    tmp = a.out.with_suffix(".tmp")
    size = write(gguf, SHAPES[a.shape], WEIGHT_TYPES[a.type], tmp, a.seed)
    os.replace(tmp, a.out)
    print(f"{a.out}: {SHAPES[a.shape].name} {a.type}, {size} bytes in "
          f"{time.monotonic() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
