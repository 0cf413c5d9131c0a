"""Draws an SVG chart from one or more benchmark result files (no plotting
library needed, so it runs anywhere Python does).

  python3 bench/chart.py OUT.svg RESULT.json [RESULT.json ...]

Panels: GPU read bandwidth by memory (log scale, from the first file),
decode tokens/s per configuration with the physical bound (e) as a dashed
line, and prefill tokens/s for the long prompt (log scale), for each model
of each file.
"""

import json
import math
import sys
from xml.sax.saxutils import escape

W, LABEL_W, BAR_H, GAP, PAD = 820, 190, 18, 6, 14
COLORS = {"vram": "#4c72b0", "vram+shim": "#8da0cb", "vram-again": "#4c72b0", "shim": "#dd8452",
          "shim-minspill64M": "#f0b27a", "zerocopy": "#c9a227", "offload": "#55a868",
          "cpusplit": "#c44e52", "cpusplit-bf16": "#e08a8c"}


class Svg:
    def __init__(self):
        self.parts, self.y = [], PAD

    def text(self, x, y, s, size=12, anchor="start", weight="normal"):
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" '
                          f'text-anchor="{anchor}" font-weight="{weight}">{escape(s)}</text>')

    def panel(self, title, rows, log=False, bound=None, unit="", top=None):
        """rows: (label, value, color). bound: (value, label) or None.
        top: axis end (linear scale); longer bars are cut and marked."""
        rows = [r for r in rows if r[1] and r[1] > 0]
        if not rows:
            return
        self.text(PAD, self.y + 14, title, 14, weight="bold")
        self.y += 24
        top = top or max([r[1] for r in rows] + ([bound[0]] if bound else [])) * 1.15
        low = min(r[1] for r in rows) / 2 if log else 0
        x0, x1 = LABEL_W, W - 90

        def sx(v):
            if log:
                return x0 + (x1 - x0) * (math.log10(v) - math.log10(low)) / (
                    math.log10(top) - math.log10(low))
            return x0 + (x1 - x0) * v / top

        y_start = self.y
        for label, value, color in rows:
            cut = not log and value > top
            end = sx(min(value, top))
            self.text(x0 - 6, self.y + BAR_H - 5, label, 12, "end")
            self.parts.append(f'<rect x="{x0}" y="{self.y}" width="{max(1, end - x0):.1f}" '
                              f'height="{BAR_H}" fill="{color}"/>')
            if cut:
                self.parts.append(f'<rect x="{end - 14:.1f}" y="{self.y - 1}" width="5" '
                                  f'height="{BAR_H + 2}" fill="white"/>')
            self.text(end + 4, self.y + BAR_H - 5,
                      f"{value:.3g} {unit}" + (" >>" if cut else ""), 11)
            self.y += BAR_H + GAP
        if bound:
            bx = sx(bound[0])
            self.parts.append(f'<line x1="{bx:.1f}" y1="{y_start - 4}" x2="{bx:.1f}" '
                              f'y2="{self.y}" stroke="black" stroke-dasharray="4,3"/>')
            self.text(bx, self.y + 12, bound[1], 11, "middle")
            self.y += 16
        if log:
            self.text(x1, self.y + 10, "log scale", 10, "end")
        self.y += 22

    def render(self):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{self.y + PAD}" '
                f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
                + "".join(self.parts) + "</svg>\n")


def draw(results):
    s = Svg()
    first = results[0]
    env = first.get("env", {})
    gpu = env.get("gpu", "?").split(",")
    s.text(PAD, s.y + 14, f"Spillway benchmarks: {gpu[0]}, driver "
           f"{gpu[2].strip() if len(gpu) > 2 else '?'}, {env.get('date', '?')[:10]}", 15,
           weight="bold")
    s.y += 28
    names = [("VRAM (cudaMalloc)", "vram_read_gbps", "#4c72b0"),
             ("spilled by the shim", "spilled_read_gbps", "#dd8452"),
             ("cudaHostAlloc mapped", "mapped_read_gbps", "#c9a227"),
             ("cudaMemcpy H2D, pinned", "h2d_gbps", "#55a868")]
    bw = first["derived"]["bandwidth"]
    s.panel("GPU read bandwidth, 4 GiB buffers (GB/s)",
            [(n, bw.get(k), c) for n, k, c in names], log=True, unit="GB/s")
    seen = set()
    for r in results:
        when = r.get("env", {}).get("date", "?")[11:16]
        for arch, a in r["derived"]["decode"].items():
            tag = f", run of {when}" if arch in seen or len(results) > 1 else ""
            seen.add(arch)
            rows = [(x["label"], x["decode_tok_s"], COLORS.get(x["label"], "#777"))
                    for x in a["rows"]]
            spilled = [x["decode_tok_s"] for x in a["rows"] if not x["label"].startswith("vram")]
            top = max(spilled + [a["bound_tok_s"]]) * 1.6
            s.panel(f"{arch}: decode, batch 1 (tokens/s){tag}", rows,
                    bound=(a["bound_tok_s"], f"bound (e) {a['bound_tok_s']:.2f}"), unit="tok/s",
                    top=top)
            rows = [(x["label"], x["prefill_long_tok_s"], COLORS.get(x["label"], "#777"))
                    for x in a["rows"]]
            s.panel(f"{arch}: prefill, 2048 tokens (tokens/s){tag}", rows, log=True, unit="tok/s")
    return s.render()


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: chart.py OUT.svg RESULT.json [RESULT.json ...]")
    results = []
    for p in sys.argv[2:]:
        with open(p) as f:
            results.append(json.load(f))
    with open(sys.argv[1], "w") as f:
        f.write(draw(results))


if __name__ == "__main__":
    main()
