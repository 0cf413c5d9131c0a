"""Models for the decode and prefill benchmarks, and the ways to place them.

Weights are random bf16 (no downloads): their values do not change the
speed, only their size and where they live do. Each placement puts the same
model under the same VRAM budget in a different way:

  vram      everything in VRAM (no budget): the ceiling
  shim      created on cuda under LD_PRELOAD=libspillway-cuda.so with
            SPILLWAY_VRAM_LIMIT; the shim decides what spills
  zerocopy  the layers past the budget in pinned, GPU-mapped host memory,
            read in place by the GPU (what the shim should amount to, done
            by hand; no shim)
  offload   accelerate's dispatch_model with CPU offload: the layers past the
            budget live in CPU memory and are copied to the GPU at every
            forward (what transformers' device_map="auto" does)
  cpusplit  the layers past the budget computed on the CPU (llama.cpp -ngl)
"""

import torch
from torch import nn

GIB = 1 << 30

# About 15 GB of bf16 weights each.
ARCHS = {
    # Llama-2/3-like 7B: 32 layers, GQA, vocab kept small so that the
    # layers, not the embeddings, dominate.
    "dense": dict(kind="llama", hidden_size=4096, intermediate_size=14336,
                  num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=32000),
    # Mixtral-style: 8 experts, top-2, narrower experts so 18 layers make
    # about 15 GB; a token reads attention plus 2 of the 8 experts.
    "moe": dict(kind="mixtral", hidden_size=4096, intermediate_size=3584,
                num_hidden_layers=18, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=32000,
                num_local_experts=8, num_experts_per_tok=2),
    # Small versions (~1.7 and ~1.5 GB) to check the harness quickly.
    "dense-small": dict(kind="llama", hidden_size=2048, intermediate_size=5632,
                        num_hidden_layers=16, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=32000),
    "moe-small": dict(kind="mixtral", hidden_size=2048, intermediate_size=1408,
                      num_hidden_layers=8, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=32000,
                      num_local_experts=8, num_experts_per_tok=2),
}


def make_config(arch):
    spec = dict(ARCHS[arch])
    kind = spec.pop("kind")
    common = dict(max_position_embeddings=4096, tie_word_embeddings=False,
                  rms_norm_eps=1e-5)
    if kind == "llama":
        from transformers import LlamaConfig
        return LlamaConfig(**spec, **common)
    from transformers import MixtralConfig
    return MixtralConfig(**spec, **common)


def build_on(config, device):
    """Builds the model with random bf16 weights directly on `device`."""
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    kwargs = dict(dtype=torch.bfloat16)
    if hasattr(config, "num_local_experts"):
        # Loop over the routed experts only: a token reads the experts it
        # is routed to and no others, whatever the placement.
        kwargs["experts_implementation"] = "eager"
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, **kwargs)
    finally:
        torch.set_default_dtype(old)
    model.eval().requires_grad_(False)
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.bfloat16]
    if bad:
        raise RuntimeError(f"parameters not bf16: {bad[:3]}")
    return model


def per_token_fraction(name, config):
    """Share of a parameter one decoded token reads."""
    if "embed_tokens" in name:
        return 1.0 / config.vocab_size
    if ".experts." in name:
        return config.num_experts_per_tok / config.num_local_experts
    return 1.0


def split_device_map(model, budget_gib, reserve_gib):
    """accelerate's device map for a GPU budget, as applications compute it.

    The reserve is kept free for the KV cache and activations. The same map
    is used for zerocopy, offload, cpusplit and the bound, so that they
    compare the same split.
    """
    from accelerate import infer_auto_device_map
    gpu = int((budget_gib - reserve_gib) * GIB)
    return infer_auto_device_map(
        model, max_memory={0: gpu, "cpu": 400 * GIB},
        no_split_module_classes=list(model._no_split_modules or []),
        dtype=torch.bfloat16)


def device_of(name, device_map):
    """Device a parameter gets under a module-level device map."""
    best = None
    for prefix, dev in device_map.items():
        if prefix == "" or name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, dev)
    if best is None:
        raise KeyError(name)
    return "cpu" if best[1] in ("cpu", "disk") else "cuda"


def bytes_by_place(model, placement, config):
    """Bytes of weights by place (vram_bytes, host_bytes) and the bytes of
    them one decoded token reads (vram_touched, host_touched).

    placement maps parameter name -> fraction of it that is in host memory.
    """
    out = dict(vram_bytes=0, host_bytes=0, vram_touched=0.0, host_touched=0.0)
    for name, p in model.named_parameters():
        b = p.numel() * p.element_size()
        h = placement.get(name, 0.0)
        f = per_token_fraction(name, config)
        out["host_bytes"] += b * h
        out["vram_bytes"] += b * (1 - h)
        out["host_touched"] += b * h * f
        out["vram_touched"] += b * (1 - h) * f
    return out


class _CudaArray:
    """__cuda_array_interface__ over a raw device pointer."""

    def __init__(self, ptr, nbytes):
        self.__cuda_array_interface__ = dict(
            shape=(nbytes // 2,), typestr="<i2", data=(ptr, False), version=3)


def cuda_view(ptr, like):
    """A CUDA tensor shaped like `like` (2-byte dtype) over the GPU-mapped
    host memory at `ptr`: under unified addressing the device pointer of
    pinned or registered host memory is its host pointer."""
    nbytes = like.numel() * like.element_size()
    view = torch.as_tensor(_CudaArray(ptr, nbytes), device="cuda").view(like.dtype).view(like.shape)
    if view.data_ptr() != ptr:
        raise RuntimeError("CUDA view does not alias the host buffer")
    return view


def to_mapped_host(t):
    """A CUDA tensor whose storage is pinned host memory the GPU reads in
    place (zero-copy). Returns (cuda_view, host_owner)."""
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t)
    return cuda_view(host.data_ptr(), t), host


def _move(x, device, dtype=None):
    if isinstance(x, torch.Tensor):
        if dtype is not None and x.is_floating_point():
            return x.to(device=device, dtype=dtype)
        return x.to(device)
    if isinstance(x, tuple):
        return tuple(_move(y, device, dtype) for y in x)
    if isinstance(x, list):
        return [_move(y, device, dtype) for y in x]
    if isinstance(x, dict):
        return {k: _move(v, device, dtype) for k, v in x.items()}
    return x  # caches, None, flags: left where they are


def _cpu_hooks(module, cpu_dtype):
    """Runs `module` on the CPU: inputs go there, outputs come back."""

    def pre(mod, args, kwargs):
        return _move(args, "cpu", cpu_dtype), _move(kwargs, "cpu", cpu_dtype)

    def post(mod, args, kwargs, output):
        return _move(output, "cuda", torch.bfloat16)

    module.register_forward_pre_hook(pre, with_kwargs=True)
    module.register_forward_hook(post, with_kwargs=True)


def top_level_cpu_modules(device_map):
    return [m for m, d in device_map.items() if d in ("cpu", "disk")]


def place(model_cuda, mode, device_map, cpu_dtype=torch.float32):
    """Applies a placement to a model built on cuda. Returns (model, info)
    where info['host_fraction'] maps parameter names to the share of them
    the placement put in host memory (for the bound)."""
    names = [n for n, _ in model_cuda.named_parameters()]
    host = {n: (1.0 if device_of(n, device_map) == "cpu" else 0.0) for n in names}
    info = dict(host_fraction=host)
    keep = []
    if mode == "zerocopy":
        for mod_name, mod in model_cuda.named_modules():
            for pname, p in list(mod.named_parameters(recurse=False)):
                full = f"{mod_name}.{pname}" if mod_name else pname
                if host[full]:
                    view, owner = to_mapped_host(p.data)
                    keep.append(owner)
                    mod._parameters[pname] = nn.Parameter(view, requires_grad=False)
        model_cuda._zerocopy_owners = keep
        torch.cuda.empty_cache()
        return model_cuda, info
    if mode == "cpusplit":
        for m in top_level_cpu_modules(device_map):
            sub = model_cuda.get_submodule(m)
            sub.to(device="cpu", dtype=cpu_dtype)
            _cpu_hooks(sub, cpu_dtype)
        torch.cuda.empty_cache()
        info["cpu_dtype"] = str(cpu_dtype).replace("torch.", "")
        info["cpu_threads"] = torch.get_num_threads()
        return model_cuda, info
    if mode == "offload":
        from accelerate import dispatch_model
        model_cpu = model_cuda.to("cpu")
        torch.cuda.empty_cache()
        kwargs = dict(device_map=device_map, main_device=0, offload_buffers=False)
        skip = getattr(model_cpu, "_skip_keys_device_placement", None)
        try:
            model = dispatch_model(model_cpu, skip_keys=skip, **kwargs)
        except TypeError:
            model = dispatch_model(model_cpu, **kwargs)
        return model, info
    raise ValueError(mode)


def probe_placement(model, min_bytes=4 << 20):
    """Measures where each parameter really is, by reading it with the GPU.

    HBM reads run at TB/s, reads over PCIe at most 64 GB/s (Gen5 x16): a
    parameter read at under 100 GB/s is counted as host memory (a 4 MiB read
    from VRAM, launch latency included, measured about 250 GB/s). Parameters under min_bytes
    are latency-bound and not classified (counted as VRAM; their total is
    reported). Works the same with or without the shim, and does not trust
    any pointer query the shim may answer.
    """
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    frac, small, rates = {}, 0, []
    for name, p in model.named_parameters():
        b = p.numel() * p.element_size()
        if p.device.type != "cuda" or b < min_bytes:
            frac[name] = 0.0
            small += b if p.device.type == "cuda" else 0
            continue
        for _ in range(2):  # the second read is timed
            start.record()
            p.sum(dtype=torch.float32)
            stop.record()
            stop.synchronize()
        gbps = b / (start.elapsed_time(stop) * 1e-3) / 1e9
        rates.append(gbps)
        frac[name] = 1.0 if gbps < 100 else 0.0
    return frac, dict(unclassified_small_bytes=small,
                      slowest_gbps=min(rates) if rates else None,
                      fastest_gbps=max(rates) if rates else None)


def total_bytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters())

