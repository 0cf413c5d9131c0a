"""Merges one bench/hybrid.sh run into one JSON file and an SVG chart, and prints its table.

  python3 bench/hybrid_collect.py WORK_DIR OUT.json OUT.svg
  python3 bench/hybrid_collect.py --table OUT.json
"""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chart import Svg  # noqa: E402

COLORS = {"vram": "#4c72b0", "shim": "#dd8452", "offload": "#55a868", "cpusplit": "#c44e52",
          "cpusplit-bf16": "#e08a8c", "hybrid": "#8172b3"}


def rows(run):
    out = []
    for r in run["configs"]:
        if "decode" not in r:
            continue
        d = r["decode"]
        h = r.get("hybrid", {})
        out.append(dict(label=r["label"], decode_tok_s=d["tokens_per_s"],
                        median_tok_s=1e3 / d["ms_per_token_median"], tokens=d["tokens_timed"],
                        prefill_short_tok_s=r["prefill_short"]["tokens_per_s"],
                        prefill_long_tok_s=(r["prefill_long"] or {}).get("tokens_per_s"),
                        host_gb=r["measured"]["host_bytes"] / 1e9,
                        own_bound_tok_s=1e3 / h["own_bound_ms"] if h else None))
    return out


def derive(run):
    rs = {r["label"]: r for r in rows(run)}
    d = dict(rows=list(rs.values()))
    hy = rs.get("hybrid")
    if hy:
        others = [r["decode_tok_s"] for k, r in rs.items()
                  if k in ("shim", "cpusplit", "cpusplit-bf16")]
        if others:
            d["hybrid_vs_best_of_shim_and_cpusplits"] = hy["decode_tok_s"] / max(others)
        d["hybrid_vs_own_bound"] = hy["decode_tok_s"] / hy["own_bound_tok_s"]
        d["hybrid_median_vs_own_bound"] = hy["median_tok_s"] / hy["own_bound_tok_s"]
        if rs.get("offload", {}).get("prefill_long_tok_s") and hy["prefill_long_tok_s"]:
            d["hybrid_vs_offload_prefill_long"] = (hy["prefill_long_tok_s"]
                                                   / rs["offload"]["prefill_long_tok_s"])
    return d


def table(run):
    d = run["derived"]
    lines = [f"{run['arch']} ({run.get('device')}, {run.get('date')})", "", "| config | tok/s | median-step tok/s | tokens | prefill short | "
             "prefill 2048 | host GB |", "|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(f"| {r['label']} | {r['decode_tok_s']:.2f} | {r['median_tok_s']:.2f} | "
                     f"{r['tokens']} | {r['prefill_short_tok_s']:.0f} | "
                     f"{r['prefill_long_tok_s'] or 0:.0f} | {r['host_gb']:.2f} |")
    for k, v in d.items():
        if k != "rows":
            lines.append(f"{k}: {v:.3f}")
    return "\n".join(lines)


def chart(run, path):
    s = Svg()
    d = run["derived"]
    s.text(14, s.y + 14, f"Hybrid decode (python/spillway): {run['arch']}, {run.get('device', '?')}, "
           f"{run.get('date', '?')}", 15, weight="bold")
    s.y += 28
    hy = next((r for r in d["rows"] if r["label"] == "hybrid"), None)
    bound = (hy["own_bound_tok_s"], f"hybrid's own bound {hy['own_bound_tok_s']:.1f}") if hy else None
    s.panel(f"{run['arch']}: decode, batch 1 (tokens/s), 8 GiB budget",
            [(r["label"], r["decode_tok_s"], COLORS.get(r["label"], "#777")) for r in d["rows"]
             if r["label"] != "vram"], bound=bound, unit="tok/s")
    s.panel(f"{run['arch']}: prefill of 2048 tokens (tokens/s)",
            [(r["label"], r["prefill_long_tok_s"], COLORS.get(r["label"], "#777"))
             for r in d["rows"]], log=True, unit="tok/s")
    with open(path, "w") as f:
        f.write(s.render())


def main():
    if sys.argv[1] == "--table":
        with open(sys.argv[2]) as f:
            print(table(json.load(f)))
        return
    work, out_json, out_svg = sys.argv[1:4]
    configs = []
    for p in sorted(glob.glob(os.path.join(work, "dec-*.json"))):
        try:
            with open(p) as f:
                configs.append(json.load(f))
        except (OSError, ValueError) as e:
            configs.append(dict(error=f"{os.path.basename(p)}: {e}"))
    steps = open(os.path.join(work, "steps.txt")).read() if os.path.exists(
        os.path.join(work, "steps.txt")) else ""
    first = next((c for c in configs if "versions" in c), {})
    run = dict(arch=first.get("arch"), device=first.get("versions", {}).get("device"),
               versions=first.get("versions"), configs=configs, failed_steps=steps,
               date=__import__("datetime").datetime.now(__import__("datetime").timezone.utc)
               .isoformat(timespec="seconds"))
    run["derived"] = derive(run)
    with open(out_json, "w") as f:
        json.dump(run, f, indent=1)
    chart(run, out_svg)
    print(table(run))
    if steps:
        print("failed or skipped:\n" + steps)


if __name__ == "__main__":
    main()
