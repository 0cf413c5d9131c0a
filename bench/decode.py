"""Decode and prefill speed of one model under one placement (one process).

  python3 bench/decode.py --arch dense --mode shim --out result.json

Builds the model (random bf16 weights, see models.py), places it, then times:
a prefill of --prompt tokens, up to --new greedy decode steps (fewer when
--max-decode-s runs out: the count is in the output), and a prefill of
--prefill tokens. Batch 1. Writes one JSON object.
"""

import argparse
import copy
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def sync():
    torch.cuda.synchronize()


T_START = time.perf_counter()


def phase(name):
    """Progress on stderr (with SPILLWAY_BENCH_TRACE=SECONDS, also every thread's stack that
    often: where a configuration that runs out of its time limit spent it)."""
    if os.environ.get("SPILLWAY_BENCH_TRACE"):
        print(f"[decode.py +{time.perf_counter() - T_START:.1f}s] {name}", file=sys.stderr,
              flush=True)


def prefill(model, ids):
    sync()
    t0 = time.perf_counter()
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    nxt = out.logits[:, -1:].argmax(-1)
    sync()
    return time.perf_counter() - t0, out.past_key_values, nxt


def timed_prefill(model, ids, budget_s):
    """Up to 3 prefills while they take under budget_s together (at least
    one); the
    fastest counts (the first can include one-time library set-up)."""
    times = []
    while len(times) < 3 and sum(times) < budget_s:
        t, cache, _ = prefill(model, ids)
        del cache
        times.append(t)
    return dict(tokens=ids.shape[1], seconds=min(times), runs=times,
                tokens_per_s=ids.shape[1] / min(times))


def decode(model, ids, new, max_s, min_tokens=8):
    _, cache, nxt = prefill(model, ids)
    steps = []
    start = time.perf_counter()
    for i in range(new):
        sync()
        t0 = time.perf_counter()
        out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        sync()
        steps.append(time.perf_counter() - t0)
        if i + 1 >= min_tokens and time.perf_counter() - start > max_s:
            break
    ms = [s * 1e3 for s in steps]
    return dict(tokens_requested=new, tokens_timed=len(steps),
                ms_per_token_median=statistics.median(ms),
                ms_per_token_mean=statistics.fmean(ms),
                ms_per_token_min=min(ms), ms_per_token_max=max(ms),
                ms_per_token_all=[round(x, 2) for x in ms],
                tokens_over_2x_median=sum(1 for x in ms if x > 2 * statistics.median(ms)),
                tokens_per_s=len(steps) / sum(steps))


def shim_stats():
    """The shim's own counters (peak VRAM, peak spill), where it exports them."""
    import ctypes
    try:
        fn = ctypes.CDLL(None).spillway_stats_json
    except AttributeError:
        return None
    fn.argtypes, fn.restype = [ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int
    buf = ctypes.create_string_buffer(1 << 16)
    n = fn(buf, len(buf))
    try:
        return json.loads(buf.value.decode()) if n > 0 else dict(error=n)
    except ValueError:
        return dict(raw=buf.value.decode(errors="replace"))


def versions():
    import accelerate
    import transformers
    return dict(torch=torch.__version__, transformers=transformers.__version__,
                accelerate=accelerate.__version__, cuda=torch.version.cuda,
                device=torch.cuda.get_device_name(0))


def stepwise(model, ids, n, tokens=None):
    """n steps: a prefill of ids, then decode steps fed the previous step's greedy token, or
    tokens[i] when given (teacher forcing: every model sees the same history). Returns (the
    greedy token of each step, per-step float32 logits on the CPU)."""
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache, logits = out.past_key_values, [out.logits[0, -1].float().cpu()]
    toks = [int(logits[-1].argmax())]
    for i in range(n - 1):
        feed = tokens[i] if tokens is not None else toks[-1]
        nxt = torch.tensor([[feed]], device=ids.device)
        out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits.append(out.logits[0, -1].float().cpu())
        toks.append(int(logits[-1].argmax()))
    return toks, logits


def rel_err(got, ref):
    return float((got - ref).abs().max() / ref.abs().max())


def numerics(ref, exact, got, forced):
    """ref: the bf16 all-in-VRAM model's greedy run; exact: the same model in float32 fed the
    reference's tokens; got: the hybrid's own greedy run; forced: the hybrid fed the
    reference's tokens. A random-weight model's logits are nearly flat (top-2 gaps of 0 to
    0.1 are common), so greedy runs part at the first near tie whatever the rounding: the
    measure is the error against float32, the hybrid's beside the bf16 reference's own."""
    same = 0
    for x, y in zip(ref[0], got[0]):
        if x != y:
            break
        same += 1
    ref_err = [rel_err(r, e) for r, e in zip(ref[1], exact)]
    hyb_err = [rel_err(f, e) for f, e in zip(forced[1], exact)]
    vs_ref = [rel_err(f, r) for f, r in zip(forced[1], ref[1])]
    flips = []
    for i, (r, f, e) in enumerate(zip(ref[1], forced[1], exact)):
        a, b = int(r.argmax()), int(f.argmax())
        if a != b:
            flips.append(dict(step=i, ref_gap=float(r[a] - r[b]), fp32_gap=float(e[a] - e[b])))

    def stats(xs):
        return dict(max=round(max(xs), 5), median=round(statistics.median(xs), 5))
    return dict(
        tokens=len(ref[0]), greedy_identical_prefix=same, ref_tokens=ref[0], hybrid_tokens=got[0],
        metric="max |logits - logits_fp32| / max |logits_fp32| per step, every model fed the "
               "reference's tokens (the first step is the 64-token prefill)",
        bf16_reference_vs_fp32=stats(ref_err), hybrid_vs_fp32=stats(hyb_err),
        hybrid_vs_bf16_reference=stats(vs_ref),
        hybrid_over_reference_error=round(max(hyb_err) / max(ref_err), 3),
        forced_argmax_agrees=len(ref[0]) - len(flips), forced_argmax_flips=flips,
        ref_top2_gap=[round(float(r.topk(2).values[0] - r.topk(2).values[1]), 5) for r in ref[1]])


def unit_profile(model):
    """The first spilled MLP split between both roads: each road alone and together (ms), and
    what all the spilled units would take at that pace against the measured step."""
    from spillway.calibrate import measure_unit
    from spillway.units import SplitMLP
    units = [m for m in model.modules() if isinstance(m, SplitMLP) and m.g and m.c]
    if not units:
        return None
    with torch.inference_mode():
        r = measure_unit(units[0])
    r["split_mlps"] = len(units)
    r["split_mlps_together_ms"] = len(units) * r["together_ms"]
    return r


def place_hybrid(model, config, a, res):
    """spillway.place (python/spillway): the hybrid GPU+CPU placement, checked against the
    all-in-VRAM model it starts from when --check-tokens is given."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "python"))
    import spillway
    from spillway import plan as splan
    gen = torch.Generator(device="cpu").manual_seed(7)
    check_ids = torch.randint(0, config.vocab_size, (1, 64), generator=gen).to("cuda")
    ref = None
    if a.check_tokens:
        phase("reference tokens")
        with torch.inference_mode():
            ref = stepwise(model, check_ids, a.check_tokens)
            exact_model = copy.deepcopy(model).float()
            exact = stepwise(exact_model, check_ids, a.check_tokens, ref[0])[1]
        del exact_model
        torch.cuda.empty_cache()
    phase("place")
    model = spillway.place(model, int(a.budget_gib * models.GIB),
                           reserve=int(a.reserve_gib * models.GIB),
                           gather_resident_experts=not a.eager_resident_experts)
    info = model.spillway.summary()
    plan = model.spillway.plan
    cal = info["calibration"]
    bound_s = splan.decode_bound_s(plan, cal["gpu_together_gbps"], cal["cpu_together_gbps"],
                                   3064.0, resident_read_bytes=0)
    touched = sum(p.unit.nbytes * p.unit.read_fraction for p in plan.placements if not p.in_vram)
    vram_touched = sum(p.unit.nbytes * p.unit.read_fraction for p in plan.placements if p.in_vram)
    res["hybrid"] = dict(
        summary=info, engine_stats_after_place=dict(model.spillway.engine.stats),
        own_bound_ms=bound_s * 1e3,
        own_bound_note="max(GPU rows / GPU road, CPU rows / CPU road) at the rates measured "
                       "together at start, + units in VRAM at 3064 GB/s (embeddings and head "
                       "not counted)",
        measured=dict(host_bytes=plan.host_bytes, vram_bytes=models.total_bytes(model)
                      + plan.vram_weight_bytes, host_touched=touched,
                      vram_touched=vram_touched))
    phase("placed")
    if ref is not None:
        with torch.inference_mode():
            got = stepwise(model, check_ids, a.check_tokens)
            forced = stepwise(model, check_ids, a.check_tokens, ref[0])
        res["hybrid"]["numerics"] = numerics(ref, exact, got, forced)
    torch.cuda.synchronize()
    phase("checked")
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=sorted(models.ARCHS), required=True)
    ap.add_argument("--mode", choices=["vram", "shim", "zerocopy", "offload", "cpusplit",
                                       "hybrid"], required=True)
    ap.add_argument("--label", help="name in the results (default: the mode)")
    ap.add_argument("--budget-gib", type=float, default=8.0)
    ap.add_argument("--reserve-gib", type=float, default=1.0,
                    help="part of the budget kept for KV cache and activations")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--prefill", type=int, default=2048, help="0: no long prefill")
    ap.add_argument("--max-decode-s", type=float, default=20.0)
    ap.add_argument("--cpu-dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--check-tokens", type=int, default=0,
                    help="hybrid: greedy tokens compared with the all-in-VRAM model first")
    ap.add_argument("--eager-resident-experts", action="store_true",
                    help="hybrid: routed experts kept in VRAM run transformers' own loop")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    trace = float(os.environ.get("SPILLWAY_BENCH_TRACE") or 0)
    if trace > 0:
        import faulthandler
        faulthandler.dump_traceback_later(trace, repeat=True)

    preloaded = "spillway" in os.environ.get("LD_PRELOAD", "")
    if (a.mode == "shim") != preloaded and not (a.mode == "vram" and a.label):
        sys.exit(f"decode.py: mode {a.mode} with LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r}: "
                 "run mode shim (and only a labelled vram run) under libspillway-cuda.so")

    # cuDNN's attention builds a plan for each new key length, i.e. at every
    # decode step (seen: a constant ~50 ms per token on the H100, whatever
    # the model size); flash and memory-efficient attention do not.
    torch.backends.cuda.enable_cudnn_sdp(False)

    t_setup = time.perf_counter()
    phase("build")
    config = models.make_config(a.arch)
    model = models.build_on(config, "cuda")
    dm = models.split_device_map(model, a.budget_gib, a.reserve_gib)
    split_host = {n: (1.0 if models.device_of(n, dm) == "cpu" else 0.0)
                  for n, _ in model.named_parameters()}
    res = dict(label=a.label or a.mode, arch=a.arch, mode=a.mode, cudnn_sdp=False,
               budget_gib=a.budget_gib, reserve_gib=a.reserve_gib,
               versions=versions(),
               spillway_env={k: v for k, v in os.environ.items()
                             if k.startswith("SPILLWAY_") or k == "LD_PRELOAD"},
               model_bytes=models.total_bytes(model),
               split_layers_on_gpu=sum(1 for k, v in dm.items()
                                       if ".layers." in k and v not in ("cpu", "disk")),
               split_layers_off_gpu=sum(1 for k, v in dm.items()
                                        if ".layers." in k and v in ("cpu", "disk")),
               split=models.bytes_by_place(model, split_host, config),
               config=dict(models.ARCHS[a.arch]),
               attn_implementation=getattr(model.config, "_attn_implementation", None),
               experts_implementation=getattr(model.config, "_experts_implementation", None))

    if a.mode in ("zerocopy", "offload", "cpusplit"):
        model, info = models.place(model, a.mode, dm, getattr(torch, a.cpu_dtype))
        res["placement_info"] = {k: v for k, v in info.items() if k != "host_fraction"}
    if a.mode == "hybrid":
        model = place_hybrid(model, config, a, res)
    if a.mode == "hybrid":
        res["measured"] = res["hybrid"]["measured"]
    elif a.mode in ("vram", "shim", "zerocopy"):
        frac, probe = models.probe_placement(model)
        res["probe"] = probe
        res["measured"] = models.bytes_by_place(model, frac, config)
    else:
        res["measured"] = res["split"]
    res["setup_s"] = time.perf_counter() - t_setup

    gen = torch.Generator(device="cpu").manual_seed(1)
    vocab = config.vocab_size

    def ids(n):
        return torch.randint(0, vocab, (1, n), generator=gen).to("cuda")

    with torch.inference_mode():
        # Warm-up: kernels, cuBLAS handles, accelerate's hooks.
        phase("warm-up")
        w = decode(model, ids(16), 3, 1e9, min_tokens=3)
        torch.cuda.reset_peak_memory_stats()
        if preloaded:
            res["shim_stats_before_timing"] = shim_stats()
        free0, total = torch.cuda.mem_get_info()
        phase(f"warm-up decode {w['ms_per_token_mean']:.1f} ms/token; prefill {a.prompt}")
        res["prefill_short"] = timed_prefill(model, ids(a.prompt), 8)
        phase("decode")
        res["decode"] = decode(model, ids(a.prompt), a.new, a.max_decode_s)
        phase(f"decode {res['decode']['tokens_per_s']:.2f} tok/s; prefill {a.prefill}")
        res["prefill_long"] = timed_prefill(model, ids(a.prefill), 8) if a.prefill > 0 else None
        if a.mode == "vram" and not a.label:
            # Why cuDNN attention is off: the same decode with it on.
            torch.backends.cuda.enable_cudnn_sdp(True)
            c = decode(model, ids(a.prompt), 6, 1e9, min_tokens=6)
            torch.backends.cuda.enable_cudnn_sdp(False)
            res["decode_ms_per_token_with_cudnn_sdp"] = c["ms_per_token_median"]
    res["warmup_decode_ms"] = w["ms_per_token_mean"]
    res["cuda_max_memory_allocated"] = torch.cuda.max_memory_allocated()
    res["cuda_max_memory_reserved"] = torch.cuda.max_memory_reserved()
    res["mem_get_info_free_total"] = [free0, total]
    if a.mode == "hybrid":
        res["hybrid"]["engine_stats"] = dict(model.spillway.engine.stats)
        res["hybrid"]["unit_profile"] = unit_profile(model)
    if preloaded:
        res["shim_stats"] = shim_stats()
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    d = res["decode"]
    print(f"{a.arch:6s} {res['label']:10s} decode {d['tokens_per_s']:7.2f} tok/s "
          f"({d['tokens_timed']} tokens), prefill {a.prompt}: "
          f"{res['prefill_short']['tokens_per_s']:8.1f} tok/s, prefill {a.prefill}: "
          f"{res['prefill_long']['tokens_per_s'] if res['prefill_long'] else 0:8.1f} tok/s, host bytes "
          f"{res['measured']['host_bytes'] / 1e9:.2f} GB, setup {res['setup_s']:.0f} s",
          flush=True)


if __name__ == "__main__":
    main()
