"""llama.cpp under a VRAM budget: each placement side by side, against its physical bound.

  python3 bench/llama/run.py --bin BUILD/bin --gguf-py SRC/gguf-py --shim libspillway-cuda.so \
      --models-dir /dev/shm/models --out bench/results/DATE-llama.json [--shapes dense,moe] \
      [--type q8_0|bf16] [--budget-gib 8]

For each model (MODELS_DIR/<shape>-<type>.gguf, written first if missing, random
weights), with a budget (SPILLWAY_VRAM_LIMIT) of --budget-gib GiB, or else of
--budget-fraction of the model file:
  vram      -ngl 99, no shim: everything in VRAM (the ceiling)
  fit       the shim with the budget, default report; llama.cpp's own fit
            (llama-fit-params) picks -ngl/-ot, which must equal what it picks under
            SPILLWAY_REPORT=physical, i.e. on a card of the budget's size
  shim      the shim with the budget, -ngl 99: the shim places the weight buffer
  exps-cpu  (MoE) the shim with the budget, -ngl 99 -ot exps=CPU
Each: llama-bench prefill and decode tokens/s, the shim's spills and statistics, the
bytes each token reads from VRAM, spilled memory and the CPU, the bound, and the
greedy output of llama-completion compared byte for byte with the vram run's.
--dry-run prints the commands without running anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import placement  # noqa: E402
from placement import (Placement, bench_args, parse_bench_json, parse_fit_args,  # noqa: E402
                       parse_shim_log, placement_from_args, split)
from shapes import Q8_0, SHAPES, WEIGHT_TYPES  # noqa: E402

PROMPT = "the quick brown fox jumps over the lazy dog and then"
CONFIGS = ("vram", "fit", "shim", "exps-cpu")
MIB = 1 << 20
GIB = 1 << 30


class Runner:
    def __init__(self, work: Path, dry_run: bool, timeout: float) -> None:
        self.work, self.dry_run, self.timeout = work, dry_run, timeout
        self.n = 0

    def __call__(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
        self.n += 1
        shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {shown} {shlex.join(argv)}", flush=True)
        if self.dry_run:
            return 0, "", ""
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace",
                               timeout=self.timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc = -9
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        (self.work / f"{self.n:02d}-{name}.out").write_text(out)
        (self.work / f"{self.n:02d}-{name}.err").write_text(err)
        print(f"    rc {rc} in {time.monotonic() - t0:.1f} s", flush=True)
        return rc, out, err


def shim_env(shim: Path, budget: int, log: Path, report: str | None = None) -> dict[str, str]:
    env = {"LD_PRELOAD": str(shim), "SPILLWAY_VRAM_LIMIT": str(budget),
           "SPILLWAY_LOG": f"info,stats:{log}"}
    if report:
        env["SPILLWAY_REPORT"] = report
    return env


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def fit(run: Runner, a, model: Path, shim: Path, budget: int, tag: str, report: str | None):
    log = run.work / f"fit-{model.stem}-{tag}.shim.log"
    rc, out, err = run(f"fit-{model.stem}-{tag}", [str(a.bin / "llama-fit-params"), "-m", str(model),
                                      "-c", str(a.ctx)], shim_env(shim, budget, log, report))
    if a.dry_run:
        return ["-ngl", "0"]
    if rc != 0:
        raise RuntimeError(f"llama-fit-params ({tag}) failed with {rc}: {err[-400:]}")
    return parse_fit_args(out)


def budget_bytes(model_size: int, budget_gib: float | None, budget_fraction: float) -> int:
    """The VRAM budget: budget_gib GiB when given, else a fraction of the model; whole MiB."""
    if budget_gib is not None:
        return int(budget_gib * GIB) // MIB * MIB
    return int(model_size * budget_fraction) // MIB * MIB


def run_model(run: Runner, a, shape_name: str) -> dict:
    shape = SHAPES[shape_name]
    weight_type = WEIGHT_TYPES[a.type]
    model = a.models_dir / f"{shape_name}-{a.type}.gguf"
    if not model.exists():
        run(f"write-{shape_name}", [sys.executable, str(HERE / "make_gguf.py"), "--gguf-py",
                                    str(a.gguf_py), "--shape", shape_name, "--type", a.type,
                                    str(model)], {})
    size = model.stat().st_size if model.exists() else 0
    budget = budget_bytes(size, a.budget_gib, a.budget_fraction)
    if size and budget >= size:
        print(f"note: the budget ({budget} bytes) holds all of {model.name} ({size} bytes)",
              flush=True)
    res: dict = dict(shape=shape.__dict__, weight_type=a.type, model_bytes=size,
                     budget_bytes=budget, configs={})

    fits = {}
    if "fit" in a.configs:
        for tag, report in (("default", None), ("physical", "physical"), ("virtual", "virtual")):
            try:
                fits[tag] = fit(run, a, model, a.shim, budget, tag, report)
            except (RuntimeError, ValueError) as e:
                fits[tag] = dict(error=str(e))
        res["fit_args"] = fits
        res["fit_default_equals_physical"] = fits["default"] == fits["physical"]

    plans: list[tuple[str, list[str], bool]] = []  # (config, llama args, under the shim)
    for c in a.configs:
        if c == "vram":
            plans.append((c, ["-ngl", "99"], False))
        elif c == "fit" and isinstance(fits.get("default"), list):
            plans.append((c, fits["default"], True))
        elif c == "shim":
            plans.append((c, ["-ngl", "99"], True))
        elif c == "exps-cpu" and shape.n_expert:
            plans.append((c, ["-ngl", "99", "-ot", "exps=CPU"], True))

    reference = None
    for name, args, shimmed in plans:
        r: dict = dict(args=args, shim=shimmed)
        log = run.work / f"{shape_name}-{name}.shim.log"
        env = shim_env(a.shim, budget, log) if shimmed else {}
        rc, out, err = run(f"bench-{shape_name}-{name}",
                           [str(a.bin / "llama-bench"), "-m", str(model), "-p", str(a.n_prompt),
                            "-n", str(a.n_gen), "-r", str(a.reps), "-o", "json"]
                           + bench_args(args), env)
        if not a.dry_run:
            if rc == 0:
                try:
                    r.update(parse_bench_json(out))
                except ValueError as e:
                    r["error"] = str(e)
            else:
                r["error"] = f"llama-bench rc {rc}: {err[-400:]}"
        shim_log = parse_shim_log(read_log(log)) if shimmed else None
        if shim_log:
            r["shim_spills"] = shim_log["spills"]
            r["shim_stats"] = shim_log["stats"]
        p = placement_from_args(args)
        if shimmed and shim_log and shim_log["largest"]:
            p.vram_part = shim_log["largest"]["vram"]
        s = split(shape, weight_type, p)
        r["per_token"] = dict(vram_bytes=s.vram, host_bytes=s.host, cpu_bytes=s.cpu)
        r["gpu_weight_buffer"] = s.gpu_buffer
        r["gpu_weights_in_vram"] = s.gpu_in_vram
        r["budget_filled_with_weights"] = round(s.gpu_in_vram / budget, 4) if budget else None
        r["bound_decode_tps"] = round(s.bound_tps(), 3)
        if "decode_tps" in r:
            r["decode_of_bound"] = round(r["decode_tps"] / r["bound_decode_tps"], 3)

        if a.greedy:
            glog = run.work / f"{shape_name}-{name}-greedy.shim.log"
            genv = shim_env(a.shim, budget, glog) if shimmed else {}
            rc, out, err = run(f"greedy-{shape_name}-{name}",
                               [str(a.bin / "llama-completion"), "-m", str(model), "-p", PROMPT,
                                "-n", str(a.greedy), "--temp", "0", "--seed", "42", "-c",
                                str(a.ctx), "-no-cnv", "-fit", "off"] + args, genv)
            digest = hashlib.sha256(out.encode()).hexdigest()
            r["greedy"] = dict(rc=rc, sha256=digest, text=out[-300:])
            if name == "vram":
                reference = digest
            elif reference is not None:
                r["greedy"]["identical_to_vram"] = digest == reference
        res["configs"][name] = r
        print(json.dumps({k: r.get(k) for k in ("prefill_tps", "decode_tps", "bound_decode_tps",
                                                 "budget_filled_with_weights")}), flush=True)
    return res


def machine() -> dict:
    info: dict = {}
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        info["gpu"] = q.stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        info["gpu"] = f"unknown ({e})"
    info["cpus"] = os.cpu_count()
    return info


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", type=Path, required=True, help="llama.cpp's build/bin")
    ap.add_argument("--gguf-py", type=Path, required=True, help="llama.cpp's gguf-py folder")
    ap.add_argument("--shim", type=Path, required=True, help="libspillway-cuda.so")
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="result JSON")
    ap.add_argument("--work", type=Path, help="logs of every command (default: OUT without .json)")
    ap.add_argument("--shapes", default="dense,moe")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--type", default=Q8_0.name, choices=sorted(WEIGHT_TYPES),
                    help="the models' weight type (default %(default)s)")
    ap.add_argument("--budget-gib", type=float,
                    help="the VRAM budget in GiB (overrides --budget-fraction)")
    ap.add_argument("--budget-fraction", type=float, default=0.4,
                    help="the VRAM budget as a share of each model file (default %(default)s)")
    ap.add_argument("--n-prompt", type=int, default=512)
    ap.add_argument("--n-gen", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=1024, help="context for fit and llama-completion")
    ap.add_argument("--greedy", type=int, default=24, help="tokens of greedy output to compare (0: off)")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per command")
    ap.add_argument("--label", default="", help="free text stored in the result (e.g. the shim's commit)")
    ap.add_argument("--pcie-gbps", type=float, default=placement.PCIE_GBPS,
                    help="the GPU's read rate of host memory for the bound (measure it in the same "
                    "run: gpu.sh's stage bw)")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    if a.pcie_gbps <= 0:
        ap.error(f"--pcie-gbps {a.pcie_gbps}: must be positive")
    placement.PCIE_GBPS = a.pcie_gbps

    a.shapes = [s for s in a.shapes.split(",") if s]
    a.configs = [c for c in a.configs.split(",") if c]
    for s in a.shapes:
        if s not in SHAPES:
            ap.error(f"--shapes: unknown shape {s!r} (known: {', '.join(SHAPES)})")
    for c in a.configs:
        if c not in CONFIGS:
            ap.error(f"--configs: unknown configuration {c!r} (known: {', '.join(CONFIGS)})")
    if not 0 < a.budget_fraction <= 1:
        ap.error(f"--budget-fraction {a.budget_fraction}: must be in (0, 1]")
    if a.budget_gib is not None and not MIB <= a.budget_gib * GIB < 1 << 50:
        ap.error(f"--budget-gib {a.budget_gib}: must be a number of GiB from 1/1024 (1 MiB) "
                 "to 1 PiB")
    if not a.dry_run:
        for tool in ("llama-bench", "llama-fit-params", "llama-completion"):
            if not (a.bin / tool).is_file():
                ap.error(f"--bin {a.bin}: no {tool} there (build llama.cpp with bench/llama/build.sh)")
        if not a.shim.is_file():
            ap.error(f"--shim {a.shim}: no such file (make -C shim)")
    a.models_dir.mkdir(parents=True, exist_ok=True)
    work = a.work or a.out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    run = Runner(work, a.dry_run, a.timeout)

    result: dict = dict(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        label=a.label, machine=machine() if not a.dry_run else {},
                        settings=dict(weight_type=a.type, budget_gib=a.budget_gib,
                                      budget_fraction=(a.budget_fraction if a.budget_gib is None
                                                       else None),
                                      n_prompt=a.n_prompt, n_gen=a.n_gen, reps=a.reps, ctx=a.ctx,
                                      greedy=a.greedy, prompt=PROMPT),
                        bandwidth_gbps=dict(vram=placement.VRAM_GBPS, pcie=placement.PCIE_GBPS,
                                            cpu=placement.CPU_GBPS), models={})
    for s in a.shapes:
        result["models"][s] = run_model(run, a, s)
        a.out.write_text(json.dumps(result, indent=1) + "\n")  # partial results survive a timeout
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
