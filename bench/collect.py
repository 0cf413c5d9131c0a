"""Merges the per-part outputs of one benchmark run into one JSON file,
derives the physical bound and the ratios, and prints Markdown tables.

  python3 bench/collect.py WORK_DIR OUT.json
  python3 bench/collect.py --tables OUT.json      (tables of a finished run)

The bound (e) for decode: one token reads every weight it uses once, so
  time/token >= host bytes read / zero-copy read bandwidth
               + VRAM bytes read / VRAM read bandwidth,
with both bandwidths the medians measured by bandwidth.cu in the same run
(GPU kernel reading 4 GiB of cudaHostAlloc-mapped memory, and of VRAM).
It is computed for the common split (the layers past the budget in host
memory, as accelerate's device map puts them: the same split as zerocopy,
offload and cpusplit) and, for the shim, for the placement measured in its
own process (what the shim really spilled).
"""

import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return dict(error=f"{os.path.basename(path)}: {e}")


def bound_ms(split, bw):
    return (split["host_touched"] / (bw["mapped_read_gbps"] * 1e9)
            + split["vram_touched"] / (bw["vram_read_gbps"] * 1e9)) * 1e3


def derive(r):
    d = {}
    bn, bs = r["bandwidth"].get("noshim", {}), r["bandwidth"].get("shim", {})
    bw = {}
    if "malloc" in bn:
        bw["vram_read_gbps"] = bn["malloc"]["read"]["median_gbps"]
        bw["vram_write_gbps"] = bn["malloc"]["write"]["median_gbps"]
        bw["mapped_read_gbps"] = bn["mapped"]["read"]["median_gbps"]
        bw["mapped_write_gbps"] = bn["mapped"]["write"]["median_gbps"]
        bw["h2d_gbps"] = bn["memcpy"]["h2d"]["median_gbps"]
        bw["d2h_gbps"] = bn["memcpy"]["d2h"]["median_gbps"]
    if "malloc" in bs and "mapped" in bs:
        bw["spilled_read_gbps"] = bs["malloc"]["read"]["median_gbps"]
        bw["spilled_write_gbps"] = bs["malloc"]["write"]["median_gbps"]
        bw["mapped_read_gbps_shim_run"] = bs["mapped"]["read"]["median_gbps"]
        bw["spilled_vs_mapped_read"] = bw["spilled_read_gbps"] / bs["mapped"]["read"]["median_gbps"]
        bw["spilled_vs_mapped_write"] = bw["spilled_write_gbps"] / bs["mapped"]["write"]["median_gbps"]
    d["bandwidth"] = bw
    d["decode"] = {}
    for arch, runs in r["decode"].items():
        ok = {k: v for k, v in runs.items() if "decode" in v}
        if not ok or "mapped_read_gbps" not in bw:
            continue
        split = next(iter(ok.values()))["split"]
        e_ms = bound_ms(split, bw)
        vram = ok.get("vram")
        rows = []
        order = ["vram", "vram+shim", "vram-again", "shim", "zerocopy", "offload", "cpusplit"]
        for label, v in sorted(ok.items(), key=lambda kv: (
                order.index(kv[0]) if kv[0] in order else len(order), kv[0])):
            tps = v["decode"]["tokens_per_s"]
            row = dict(label=label, decode_tok_s=tps, tokens_timed=v["decode"]["tokens_timed"],
                       ratio_to_bound=tps / (1e3 / e_ms),
                       # Tokens/s from the median step: the steady state,
                       # without the steps that stall (allocation, paging).
                       decode_tok_s_median_step=1e3 / v["decode"]["ms_per_token_median"],
                       slow_tokens=v["decode"].get("tokens_over_2x_median"),
                       prefill_short_tok_s=v["prefill_short"]["tokens_per_s"],
                       prefill_long_tok_s=(v["prefill_long"]["tokens_per_s"]
                                           if v.get("prefill_long") else None),
                       host_bytes=v["measured"]["host_bytes"],
                       host_touched_per_token=v["measured"]["host_touched"],
                       peak_vram_allocated=v.get("cuda_max_memory_allocated"))
            if v["mode"] in ("shim", "zerocopy"):
                m_ms = bound_ms(v["measured"], bw)
                row["bound_at_measured_placement_tok_s"] = 1e3 / m_ms
                row["ratio_to_measured_bound"] = tps / (1e3 / m_ms)
                row["median_step_ratio_to_measured_bound"] = m_ms / v["decode"]["ms_per_token_median"]
                if vram and v["measured"]["host_bytes"] > 0:
                    # Extra prefill time over the all-VRAM run, in bytes at
                    # the zero-copy bandwidth, per byte spilled: how many
                    # times the prefill pulled the spilled weights over PCIe.
                    for key in ("prefill_short", "prefill_long"):
                        if not v.get(key) or not vram.get(key):
                            continue
                        extra = v[key]["seconds"] - vram[key]["seconds"]
                        row[key + "_passes"] = (extra * bw["mapped_read_gbps"] * 1e9
                                                / v["measured"]["host_bytes"])
            rows.append(row)
        d["decode"][arch] = dict(bound_ms_per_token=e_ms, bound_tok_s=1e3 / e_ms,
                                 split=split, rows=rows)
    d["targets"] = targets(r, d)
    return d


def targets(r, d):
    t = {}
    bw = d["bandwidth"]
    if "spilled_vs_mapped_read" in bw:
        t["spilled_read_ge_95pct_of_mapped"] = dict(
            value=bw["spilled_vs_mapped_read"], met=bw["spilled_vs_mapped_read"] >= 0.95)
    for arch, a in d["decode"].items():
        rows = {x["label"]: x for x in a["rows"]}
        if "shim" in rows:
            s = rows["shim"]
            t[f"{arch}_shim_ge_85pct_of_bound"] = dict(
                value=s["ratio_to_bound"], met=s["ratio_to_bound"] >= 0.85,
                at_measured_placement=s.get("ratio_to_measured_bound"))
            for other in ("offload", "cpusplit"):
                if other in rows:
                    t[f"{arch}_shim_faster_than_{other}"] = dict(
                        value=s["decode_tok_s"] / rows[other]["decode_tok_s"],
                        met=s["decode_tok_s"] > rows[other]["decode_tok_s"])
        if "vram+shim" in rows and "vram" in rows:
            base = [rows["vram"]["decode_tok_s"]]
            if "vram-again" in rows:
                base.append(rows["vram-again"]["decode_tok_s"])
            mean = sum(base) / len(base)
            slow = 1 - rows["vram+shim"]["decode_tok_s"] / mean
            t[f"{arch}_passthrough_decode_slowdown"] = dict(
                value=slow, met=slow < 0.01,
                spread_without_shim=(max(base) - min(base)) / mean)
            # Prefill of the long prompt is GPU-bound (decode here is bound
            # by Python and kernel launches, and spreads by 10 % or more).
            pbase = [rows[k]["prefill_long_tok_s"] for k in ("vram", "vram-again") if k in rows]
            pmean = sum(pbase) / len(pbase)
            pslow = 1 - rows["vram+shim"]["prefill_long_tok_s"] / pmean
            t[f"{arch}_passthrough_prefill_long_slowdown"] = dict(
                value=pslow, met=pslow < 0.01,
                spread_without_shim=(max(pbase) - min(pbase)) / pmean)
    al = r.get("alloc", {})
    if "noshim" in al and "passthrough" in al:
        over = []
        shim_by_size = {b["bytes"]: b for b in al["passthrough"]["sizes"]}
        for a in al["noshim"]["sizes"]:
            b = shim_by_size.get(a["bytes"])
            if b is None:
                continue
            over.append(dict(bytes=a["bytes"],
                             malloc_us=b["malloc_us_median"] - a["malloc_us_median"],
                             free_us=b["free_us_median"] - a["free_us_median"]))
        worst = max(max(o["malloc_us"], o["free_us"]) for o in over)
        t["passthrough_alloc_overhead_lt_2us"] = dict(
            value=worst, met=worst < 2, sizes=over,
            mem_get_info_us=[al[k].get("mem_get_info_us_median") for k in ("noshim", "passthrough")])
    lp = r.get("alloc_loop", {})
    if "noshim" in lp and "passthrough" in lp:
        base = [lp["noshim"]["us_per_iter_median"]]
        if "noshim2" in lp:
            base.append(lp["noshim2"]["us_per_iter_median"])
        mean = sum(base) / len(base)
        shim = [lp[k]["us_per_iter_median"] for k in ("passthrough", "passthrough2") if k in lp]
        slow = sum(shim) / len(shim) / mean - 1
        t["passthrough_alloc_loop_slowdown"] = dict(
            value=slow, met=slow < 0.01, spread_without_shim=(max(base) - min(base)) / mean,
            us_per_iter_without=base, us_per_iter_with=shim)
    return t


def merge(work):
    r = dict(schema=1, env=load(os.path.join(work, "env.json")),
             shim=load(os.path.join(work, "shim.json")), bandwidth={}, decode={},
             alloc={}, alloc_loop={})
    steps = os.path.join(work, "steps.txt")
    r["failed_or_skipped_steps"] = open(steps).read().splitlines() if os.path.exists(steps) else []
    for kind in ("noshim", "shim"):
        p = os.path.join(work, f"bw-{kind}.json")
        if os.path.exists(p):
            r["bandwidth"][kind] = load(p)
    for p in sorted(glob.glob(os.path.join(work, "dec-*.json"))):
        v = load(p)
        if "arch" in v:
            r["decode"].setdefault(v["arch"], {})[v["label"]] = v
    if os.path.exists(os.path.join(work, "gemm.json")):
        r["gemm"] = load(os.path.join(work, "gemm.json"))
    for kind in ("noshim", "passthrough", "spilled"):
        p = os.path.join(work, f"alloc-{kind}.json")
        if os.path.exists(p):
            r["alloc"][kind] = load(p)
    for kind in ("noshim", "passthrough", "noshim2", "passthrough2"):
        p = os.path.join(work, f"loop-{kind}.json")
        if os.path.exists(p):
            r["alloc_loop"][kind] = load(p)
    r["derived"] = derive(r)
    return r


def tables(r):
    d = r["derived"]
    out = []
    bw = d["bandwidth"]
    if bw:
        out.append("| path | GB/s |\n|---|---|")
        for k, v in bw.items():
            out.append(f"| {k} | {v:.3f} |" if "vs" in k else f"| {k} | {v:.1f} |")
    for arch, a in d["decode"].items():
        out.append(f"\n{arch}: bound (e) {a['bound_tok_s']:.2f} tok/s "
                   f"({a['split']['host_bytes'] / 1e9:.2f} GB of weights off the GPU, "
                   f"{a['split']['host_touched'] / 1e9:.2f} GB of them read per token)")
        out.append("| config | decode tok/s | tokens (slow) | median-step tok/s | / bound (e) "
                   "| / bound at own placement | prefill 512 tok/s | prefill 2048 tok/s | host GB "
                   "| prefill PCIe passes (512 / 2048) |\n|---|---|---|---|---|---|---|---|---|---|")
        for x in a["rows"]:
            mb = x.get("ratio_to_measured_bound")
            passes = " / ".join("%.1f" % x[k] if k in x else "-"
                                for k in ("prefill_short_passes", "prefill_long_passes"))
            plong = "%.0f" % x["prefill_long_tok_s"] if x["prefill_long_tok_s"] else "-"
            out.append(f"| {x['label']} | {x['decode_tok_s']:.2f} | {x['tokens_timed']} "
                       f"({x['slow_tokens'] if x['slow_tokens'] is not None else '?'}) | "
                       f"{x['decode_tok_s_median_step']:.2f} | "
                       f"{x['ratio_to_bound']:.2f} | {'%.2f' % mb if mb else '-'} | "
                       f"{x['prefill_short_tok_s']:.0f} | {plong} | "
                       f"{x['host_bytes'] / 1e9:.2f} | {passes} |")
    if d["targets"]:
        out.append("\n| target | value | met |\n|---|---|---|")
        for k, v in d["targets"].items():
            out.append(f"| {k} | {v['value']:.4g} | {v['met']} |")
    return "\n".join(out)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--tables":
        print(tables(load(sys.argv[2])))
        return
    if len(sys.argv) != 3:
        sys.exit("usage: collect.py WORK_DIR OUT.json | collect.py --tables OUT.json")
    r = merge(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        json.dump(r, f, indent=1)
    print(tables(r))


if __name__ == "__main__":
    main()
