"""Tests of the llama.cpp benchmark's logic, without a GPU or llama.cpp.

  python3 -m unittest discover -s bench/llama -p 'test_*.py'
The GGUF writer test also needs numpy and llama.cpp's gguf-py (LLAMA_GGUF_PY=SRC/gguf-py);
it is skipped, saying so, without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from placement import (Placement, bench_args, parse_bench_json, parse_fit_args,  # noqa: E402
                       parse_shim_log, placement_from_args, split)
from shapes import (BF16, DENSE, F32, MOE, Q8_0, TINY, TINY_MOE, WEIGHT_TYPES,  # noqa: E402
                    model_bytes, tensors)

GIB = 1 << 30


class Shapes(unittest.TestCase):
    def test_sizes_match_issue_12(self) -> None:
        # 40 % of the dense model is the 2935 MiB budget of issue 12.
        self.assertEqual(int(model_bytes(DENSE, Q8_0) * 0.4) >> 20, 2935)
        self.assertAlmostEqual(model_bytes(MOE, Q8_0) / 1e9, 7.82, places=2)

    def test_bf16_sizes_match_the_pytorch_models(self) -> None:
        # bench/models.py's dense and moe in bf16: 14.48 and 14.72 GB (there the norms are bf16 too).
        self.assertAlmostEqual(model_bytes(DENSE, BF16) / 1e9, 14.48, places=2)
        self.assertAlmostEqual(model_bytes(MOE, BF16) / 1e9, 14.72, places=2)
        for shape in (DENSE, MOE, TINY, TINY_MOE):
            ts = tensors(shape, BF16)
            matrices = sum(t.n_elements for t in ts if t.ggml_type == BF16)
            f32 = sum(t.n_elements for t in ts if t.ggml_type == F32)
            self.assertEqual(model_bytes(shape, BF16), 2 * matrices + 4 * f32, shape.name)
            self.assertEqual(model_bytes(shape, Q8_0), matrices // 32 * 34 + 4 * f32, shape.name)

    def test_q8_0_sizes(self) -> None:
        t = {x.name: x for x in tensors(DENSE, Q8_0)}
        self.assertEqual(t["blk.0.ffn_up.weight"].nbytes, 14336 * 4096 // 32 * 34)
        self.assertEqual(t["output_norm.weight"].nbytes, 4096 * 4)
        moe = {x.name: x for x in tensors(MOE, Q8_0)}
        self.assertEqual(moe["blk.0.ffn_down_exps.weight"].dims, (8, 4096, 3584))
        self.assertEqual(moe["blk.0.ffn_down_exps.weight"].read_fraction, 0.25)

    def test_bf16_sizes(self) -> None:
        t = {x.name: x for x in tensors(DENSE, BF16)}
        self.assertEqual(t["blk.0.ffn_up.weight"].ggml_type, BF16)
        self.assertEqual(t["blk.0.ffn_up.weight"].nbytes, 14336 * 4096 * 2)
        self.assertEqual(t["blk.0.attn_k.weight"].nbytes, 1024 * 4096 * 2)
        self.assertEqual(t["token_embd.weight"].nbytes, 32000 * 4096 * 2)
        self.assertEqual(t["output_norm.weight"].ggml_type, F32)  # norms stay F32
        self.assertEqual(t["blk.31.ffn_norm.weight"].nbytes, 4096 * 4)
        moe = {x.name: x for x in tensors(MOE, BF16)}
        self.assertEqual(moe["blk.0.ffn_gate_exps.weight"].nbytes, 8 * 3584 * 4096 * 2)
        self.assertEqual(moe["blk.0.ffn_gate_inp.weight"].ggml_type, F32)  # the router too
        self.assertEqual(moe["blk.0.ffn_gate_inp.weight"].nbytes, 8 * 4096 * 4)

    def test_type_sizes(self) -> None:
        self.assertEqual(sorted(WEIGHT_TYPES), ["bf16", "q8_0"])
        self.assertEqual(Q8_0.nbytes(64), 68)
        self.assertEqual(BF16.nbytes(3), 6)
        self.assertEqual(F32.nbytes(3), 12)
        with self.assertRaises(ValueError):
            Q8_0.nbytes(33)  # rows of Q8_0 are whole blocks of 32


class Split(unittest.TestCase):
    def test_all_in_vram(self) -> None:
        for wt, embd in ((Q8_0, 32000 * 4096 // 32 * 34), (BF16, 32000 * 4096 * 2)):
            s = split(DENSE, wt, Placement(n_gpu_layers=99))
            self.assertEqual(s.host, 0)
            self.assertEqual(s.cpu, 0)  # one embedding row per token: not counted
            self.assertEqual(s.vram, model_bytes(DENSE, wt) - embd)
            self.assertAlmostEqual(s.bound_tps(), 3000e9 / s.vram, places=6)

    def test_layer_split_puts_the_last_layers_on_the_gpu(self) -> None:
        for wt in (Q8_0, BF16):
            s = split(DENSE, wt, Placement(n_gpu_layers=11))
            ts = tensors(DENSE, wt)
            per_layer = sum(t.nbytes for t in ts if t.layer == 0)
            output = sum(t.nbytes for t in ts if t.name.startswith("output"))
            self.assertEqual(s.vram, 10 * per_layer + output)  # layers 22..31 and the output
            self.assertEqual(s.cpu, 22 * per_layer)
            self.assertEqual(s.host, 0)
        # A BF16 layer is 32/17 of a Q8_0 one (2 bytes an element against 34 per 32), but for its norms.
        q8 = sum(t.nbytes for t in tensors(DENSE, Q8_0) if t.layer == 0 and t.ggml_type == Q8_0)
        bf = sum(t.nbytes for t in tensors(DENSE, BF16) if t.layer == 0 and t.ggml_type == BF16)
        self.assertEqual(bf * 17, q8 * 32)

    def test_bf16_dense_at_8_gib_under_the_shim(self) -> None:
        # The hybrid benchmark's case: 14.5 GB of BF16 weights, the weight buffer split at 90 % of
        # an 8 GiB budget: about 7.7 GB read from VRAM and 6.5 GB over PCIe per token.
        full = split(DENSE, BF16, Placement())
        part = int(8 * GIB * 0.9)
        s = split(DENSE, BF16, Placement(vram_part=part))
        self.assertEqual(s.vram + s.host, full.vram)
        self.assertAlmostEqual(s.vram, part, delta=1 << 20)
        self.assertAlmostEqual(s.host / 1e9, 6.49, places=2)
        self.assertAlmostEqual(s.bound_tps(), 1 / (s.vram / 3000e9 + s.host / 51e9), places=6)
        self.assertGreater(s.bound_tps(), 7.5)  # PCIe-bound: 6.5 GB at 51 GB/s
        self.assertLess(s.bound_tps(), 7.9)

    def test_shim_split_of_the_weight_buffer(self) -> None:
        full = split(DENSE, Q8_0, Placement())
        part = 2600 << 20
        s = split(DENSE, Q8_0, Placement(vram_part=part))
        self.assertEqual(s.vram + s.host, full.vram)
        self.assertEqual(s.gpu_in_vram, part)
        self.assertAlmostEqual(s.vram, part, delta=2 << 20)  # dense: every byte is read
        # the bound of issue 12: 2.58 GB of weights in VRAM, 4.98 GB spilled: about 10 tok/s
        self.assertGreater(s.bound_tps(), 9.5)
        self.assertLess(s.bound_tps(), 10.5)
        none = split(DENSE, Q8_0, Placement(vram_part=0))
        self.assertEqual(none.vram, 0)
        self.assertAlmostEqual(none.bound_tps(), 51e9 / full.vram, places=6)

    def test_moe_experts_on_cpu(self) -> None:
        p = placement_from_args(["-ngl", "99", "-ot", "exps=CPU"])
        for wt in (Q8_0, BF16):
            s = split(MOE, wt, p)
            ts = tensors(MOE, wt)
            exps = sum(t.nbytes for t in ts if t.is_expert)
            self.assertEqual(s.cpu, exps // 4)  # top-2 of 8
            self.assertEqual(s.host, 0)
            self.assertEqual(s.gpu_buffer, sum(-(-t.nbytes // 128) * 128 for t in ts
                                               if not t.is_expert and t.name != "token_embd.weight"))
        # BF16: 12.7 GB of experts on the CPU, a token reads a quarter; 2 GB stay on the GPU.
        s = split(MOE, BF16, p)
        self.assertAlmostEqual(s.cpu / 1e9, 3.17, places=2)
        self.assertAlmostEqual(s.gpu_buffer / 1e9, 1.78, places=2)


class Parsers(unittest.TestCase):
    def test_fit_args(self) -> None:
        out = 'noise\n-c 1024 -ngl 9 -ot "blk\\.8\\.ffn_(up|down|gate)_(ch|)exps=CPU,blk\\.9\\.x=CPU"\n'
        args = parse_fit_args(out)
        self.assertEqual(args, ["-ngl", "9", "-ot",
                                "blk\\.8\\.ffn_(up|down|gate)_(ch|)exps=CPU,blk\\.9\\.x=CPU"])
        p = placement_from_args(args)
        self.assertEqual(p.n_gpu_layers, 9)
        self.assertEqual(len(p.overrides), 2)
        self.assertEqual(bench_args(args)[3].count(";"), 1)
        self.assertEqual(parse_fit_args("-c 1024 -ngl 33\n"), ["-ngl", "33"])
        with self.assertRaises(ValueError):
            parse_fit_args("llama_params_fit: failed\n")
        with self.assertRaises(ValueError):
            placement_from_args(["-ot", "nopattern"])

    def test_bench_json(self) -> None:
        rows = [dict(n_prompt=512, n_gen=0, avg_ts=741.5, stddev_ts=3.0),
                dict(n_prompt=0, n_gen=32, avg_ts=6.3, stddev_ts=0.1)]
        r = parse_bench_json("ggml_cuda_init: ...\n" + json.dumps(rows))
        self.assertEqual(r["prefill_tps"], 741.5)
        self.assertEqual(r["decode_tps"], 6.3)
        with self.assertRaises(ValueError):
            parse_bench_json("no json here")
        with self.assertRaises(ValueError):
            parse_bench_json(json.dumps(rows[:1]))

    def test_shim_log(self) -> None:
        log = ("[spillway 12 info] no VRAM for 7200000000 bytes on device 0: spilling\n"
               "[spillway 12 info] spill 300000000 bytes on device 0: 100000000 in VRAM, "
               "200000000 in host memory (host_numa): over the budget\n"
               'spillway stats: {"devices":[{"device":0,"vram_bytes":5}]}\n')
        r = parse_shim_log(log)
        self.assertEqual(len(r["spills"]), 2)
        self.assertEqual(r["largest"]["size"], 7200000000)
        self.assertEqual(r["largest"]["vram"], 0)
        self.assertEqual(r["spills"][1]["vram"], 100000000)
        self.assertEqual(r["stats"]["devices"][0]["vram_bytes"], 5)
        self.assertIsNone(parse_shim_log("")["largest"])


class Writer(unittest.TestCase):
    def test_vocab(self) -> None:
        from make_gguf import vocab
        toks, scores, types = vocab(32000)
        self.assertEqual(len(toks), 32000)
        self.assertEqual(len(set(toks)), 32000)
        self.assertEqual(len(scores), 32000)
        self.assertEqual(types[:3], [2, 3, 3])
        with self.assertRaises(ValueError):
            vocab(100)

    def test_type_option(self) -> None:
        p = subprocess.run([sys.executable, str(Path(__file__).parent / "make_gguf.py"), "--gguf-py",
                            "/nonexistent", "--shape", "tiny", "--type", "f16", "/tmp/x.gguf"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("invalid choice: 'f16'", p.stderr)

    def test_bf16_weights(self) -> None:
        try:
            import numpy
        except ImportError:
            self.skipTest("numpy is not installed")
        from make_gguf import PERIOD_BYTES, period_bytes
        period = period_bytes(BF16, numpy.random.default_rng(1))
        self.assertEqual(period.dtype, numpy.uint8)
        self.assertEqual(period.size, PERIOD_BYTES)
        bits = period.view("<u2")
        values = (bits.astype(numpy.uint32) << 16).view(numpy.float32)
        self.assertTrue(numpy.isfinite(values).all())
        self.assertAlmostEqual(float(values.std()), 0.02, delta=0.0002)
        self.assertAlmostEqual(float(values.mean()), 0.0, delta=0.0002)
        # Each value is the float32 one (the same seed regenerates it) rounded to the nearest
        # bfloat16: no nearer one on either side; truncation would never round away from zero.
        n = 100000
        want = numpy.random.default_rng(1).standard_normal(bits.size, dtype=numpy.float32)[:n] * 0.02
        err = numpy.abs(want - values[:n])
        for step in (-1, 1):
            neighbour = (bits[:n].astype(numpy.int64) + step) << 16
            neighbour = neighbour.astype(numpy.uint32).view(numpy.float32)
            self.assertTrue((err <= numpy.abs(want - neighbour)).all(), step)
        self.assertGreater(int((numpy.abs(values[:n]) > numpy.abs(want)).sum()), n // 3)

    def test_tiny_models_read_back(self) -> None:
        gguf_py = os.environ.get("LLAMA_GGUF_PY")
        if not gguf_py:
            self.skipTest("LLAMA_GGUF_PY (llama.cpp's gguf-py folder) is not set")
        try:
            import numpy
        except ImportError:
            self.skipTest("numpy is not installed")
        sys.path.insert(0, gguf_py)
        import gguf
        from make_gguf import write
        for wt in (F32, BF16, Q8_0):  # our block sizes are ggml's
            self.assertEqual(gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[wt.name.upper()]],
                             (wt.block, wt.block_bytes))
        for shape in (TINY, TINY_MOE):
            for wt in (Q8_0, BF16):
                with self.subTest(shape=shape.name, type=wt.name), tempfile.TemporaryDirectory() as d:
                    path = Path(d) / "tiny.gguf"
                    size = write(gguf, shape, wt, path)
                    self.assertEqual(size, path.stat().st_size)
                    r = gguf.GGUFReader(str(path))
                    want = tensors(shape, wt)
                    self.assertEqual([t.name for t in r.tensors], [t.name for t in want])
                    for got, t in zip(r.tensors, want):
                        self.assertEqual(got.tensor_type.name.lower(), t.ggml_type.name, t.name)
                        self.assertEqual(int(got.n_bytes), t.nbytes, t.name)
                        self.assertEqual(list(int(x) for x in got.shape), list(reversed(t.dims)),
                                         t.name)
                    self.assertEqual(r.fields["general.file_type"].contents(),
                                     gguf.LlamaFileType[f"MOSTLY_{wt.name.upper()}"])
                    self.assertEqual(r.fields["llama.block_count"].contents(), shape.n_layer)
                    self.assertEqual(r.fields["llama.expert_count"].contents() if shape.n_expert
                                     else 0, shape.n_expert)
                    out = r.tensors[2].data  # output.weight
                    self.assertEqual(out.dtype, numpy.uint8)
                    if wt == Q8_0:  # blocks with the fixed scale
                        scale = numpy.frombuffer(bytes(out.reshape(-1)[:2]), dtype=numpy.float16)[0]
                        self.assertAlmostEqual(float(scale), 0.02 / 73.3, places=6)
                    else:
                        bits = numpy.ascontiguousarray(out).reshape(-1).view("<u2")
                        values = (bits.astype(numpy.uint32) << 16).view(numpy.float32)
                        self.assertAlmostEqual(float(values.std()), 0.02, delta=0.002)
                    self.assertTrue((r.tensors[1].data == 1.0).all())  # output_norm: F32 ones


FAKE_TOOL = r"""#!/bin/sh
# A stand-in for llama.cpp's tools: records its arguments and environment, prints what the
# real one prints in the shape run.py parses.
tool=$(basename "$0")
echo "$tool $* | LD_PRELOAD=${LD_PRELOAD:-} LIMIT=${SPILLWAY_VRAM_LIMIT:-} REPORT=${SPILLWAY_REPORT:-}" >>"$CALLS"
log=${SPILLWAY_LOG#info,stats:}
case $tool in
llama-fit-params)
	if [ "${SPILLWAY_REPORT:-}" = virtual ]; then echo "-c 1024 -ngl 33"; else echo "-c 1024 -ngl 11"; fi ;;
llama-bench)
	case "$*" in *"-ngl 99"*) tg=6.3 ;; *) tg=15.2 ;; esac
	[ -n "${LD_PRELOAD:-}" ] && printf '%s\n' \
		"spillway[1] info: spill 7550000000 bytes on device 0: 2768240640 in VRAM, 4781759360 in host memory (host NUMA node 0): past SPILLWAY_VRAM_LIMIT" \
		'spillway stats: {"devices":[{"device":0,"vram_bytes":3000000000}],"counts":{"splits":1}}' >>"$log"
	echo "ggml_cuda_init: found 1 CUDA devices" >&2
	echo '[{"n_prompt": 512, "n_gen": 0, "avg_ts": 741.0, "stddev_ts": 1.0},'
	echo ' {"n_prompt": 0, "n_gen": 32, "avg_ts": '$tg', "stddev_ts": 0.1}]' ;;
llama-completion)
	echo "the quick brown fox jumps over the lazy dog and then abc def" ;;
esac
"""


def fake_tools(tmp: Path, models: tuple[str, ...]) -> None:
    """tmp/bin: stand-ins for llama.cpp's tools; tmp/models: the named model files (1000 bytes, so
    that run.py does not write them); tmp/libspillway-cuda.so: an empty file."""
    (tmp / "bin").mkdir()
    for tool in ("llama-bench", "llama-fit-params", "llama-completion"):
        f = tmp / "bin" / tool
        f.write_text(FAKE_TOOL)
        f.chmod(0o755)
    (tmp / "models").mkdir()
    for m in models:
        (tmp / "models" / m).write_bytes(b"\0" * 1000)
    (tmp / "libspillway-cuda.so").write_bytes(b"")


class RunWithFakeTools(unittest.TestCase):
    """run.py end to end with stand-ins for llama.cpp's tools: arguments, environment, JSON."""

    def run_py(self, tmp: Path, *args: str) -> dict:
        out = tmp / "r.json"
        env = {**os.environ, "CALLS": str(tmp / "calls.txt"), "PATH": os.environ.get("PATH", "")}
        p = subprocess.run([sys.executable, str(Path(__file__).parent / "run.py"), "--bin",
                            str(tmp / "bin"), "--gguf-py", str(tmp), "--shim",
                            str(tmp / "libspillway-cuda.so"), "--models-dir", str(tmp / "models"),
                            "--out", str(out), "--reps", "1", *args],
                           env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return json.loads(out.read_text())

    def test_dense_run(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            fake_tools(tmp, ("dense-q8_0.gguf",))
            result = self.run_py(tmp, "--shapes", "dense", "--pcie-gbps", "25.5")
            self.assertEqual(result["settings"]["weight_type"], "q8_0")  # the defaults
            self.assertEqual(result["settings"]["budget_fraction"], 0.4)
            self.assertIsNone(result["settings"]["budget_gib"])
            r = result["models"]["dense"]
            self.assertEqual(r["weight_type"], "q8_0")
            self.assertEqual(r["budget_bytes"], 0)  # 40 % of 1000 bytes, in whole MiB
            self.assertEqual(r["fit_args"]["default"], ["-ngl", "11"])
            self.assertEqual(r["fit_args"]["virtual"], ["-ngl", "33"])
            self.assertTrue(r["fit_default_equals_physical"])
            c = r["configs"]
            self.assertEqual(set(c), {"vram", "fit", "shim"})  # no exps-cpu for a dense model
            self.assertEqual(c["fit"]["args"], ["-ngl", "11"])
            self.assertEqual(c["shim"]["decode_tps"], 6.3)
            self.assertEqual(c["shim"]["gpu_weights_in_vram"], 2768240640)
            self.assertEqual(c["shim"]["shim_stats"]["counts"]["splits"], 1)
            self.assertNotIn("shim_spills", c["vram"])  # no shim there
            self.assertTrue(c["shim"]["greedy"]["identical_to_vram"])
            self.assertAlmostEqual(c["shim"]["decode_of_bound"],
                                   6.3 / c["shim"]["bound_decode_tps"], places=2)
            # The bound uses the host read rate given (measured in the same call by gpu.sh's bw).
            self.assertEqual(result["bandwidth_gbps"]["pcie"], 25.5)
            t = c["shim"]["per_token"]
            bound = 1 / (t["vram_bytes"] / 3000e9 + t["host_bytes"] / 25.5e9 + t["cpu_bytes"] / 100e9)
            self.assertAlmostEqual(c["shim"]["bound_decode_tps"], bound, places=2)
            calls = (tmp / "calls.txt").read_text().splitlines()
            vram = [x for x in calls if x.startswith("llama-bench") and "-ngl 99" in x]
            self.assertIn("LD_PRELOAD= LIMIT=", vram[0])  # the ceiling runs without the shim
            self.assertIn(f"LD_PRELOAD={tmp / 'libspillway-cuda.so'}", vram[1])
            self.assertTrue(all("/dense-q8_0.gguf " in x for x in calls))
            greedy = [x for x in calls if x.startswith("llama-completion")]
            self.assertTrue(all("--temp 0 --seed 42" in x and "-fit off" in x for x in greedy))

    def test_bf16_models_under_an_absolute_budget(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            fake_tools(tmp, ("dense-q8_0.gguf", "dense-bf16.gguf", "moe-bf16.gguf"))
            result = self.run_py(tmp, "--shapes", "dense,moe", "--type", "bf16", "--budget-gib", "8",
                                 "--configs", "vram,fit,exps-cpu", "--greedy", "0")
            self.assertEqual(result["settings"]["weight_type"], "bf16")
            self.assertEqual(result["settings"]["budget_gib"], 8)
            self.assertIsNone(result["settings"]["budget_fraction"])  # not used
            dense, moe = result["models"]["dense"], result["models"]["moe"]
            for r in (dense, moe):
                self.assertEqual(r["weight_type"], "bf16")
                self.assertEqual(r["budget_bytes"], 8 << 30)  # not 40 % of the 1000-byte file
            self.assertEqual(set(dense["configs"]), {"vram", "fit"})
            self.assertEqual(set(moe["configs"]), {"vram", "fit", "exps-cpu"})
            # The bytes per token are BF16's: all of the dense model but its embedding from VRAM,
            # a quarter of the MoE's 12.7 GB of BF16 experts from the CPU.
            embd = 32000 * 4096 * 2
            self.assertEqual(dense["configs"]["vram"]["per_token"]["vram_bytes"],
                             model_bytes(DENSE, BF16) - embd)
            exps = sum(t.nbytes for t in tensors(MOE, BF16) if t.is_expert)
            self.assertEqual(moe["configs"]["exps-cpu"]["per_token"]["cpu_bytes"], exps // 4)
            self.assertEqual(dense["configs"]["fit"]["per_token"]["cpu_bytes"],
                             22 * sum(t.nbytes for t in tensors(DENSE, BF16) if t.layer == 0))
            calls = (tmp / "calls.txt").read_text().splitlines()
            self.assertTrue(calls)
            for c in calls:
                self.assertRegex(c, r"-m \S*/(dense|moe)-bf16\.gguf ")
                if "LD_PRELOAD=/" in c:
                    self.assertIn(f"LIMIT={8 << 30} ", c)

    def test_budget_bytes(self) -> None:
        from run import budget_bytes
        self.assertEqual(budget_bytes(7695795520, None, 0.4), 2935 << 20)  # issue 12's
        self.assertEqual(budget_bytes(7695795520, 8.0, 0.4), 8 << 30)
        self.assertEqual(budget_bytes(0, 7.5, 0.4), 7680 << 20)
        self.assertEqual(budget_bytes(0, 0.0015, 0.4), 1 << 20)  # whole MiB, rounded down

    def test_bad_arguments_are_refused(self) -> None:
        run = str(Path(__file__).parent / "run.py")
        base = [sys.executable, run, "--bin", "/nonexistent", "--gguf-py", "/x", "--shim", "/x",
                "--models-dir", "/tmp", "--out", "/tmp/x.json"]
        for extra, message in ((["--shapes", "huge"], "unknown shape 'huge'"),
                               (["--configs", "cpu"], "unknown configuration 'cpu'"),
                               (["--budget-fraction", "1.5"], "must be in (0, 1]"),
                               (["--budget-gib", "0"], "--budget-gib 0.0: must be a number of GiB"),
                               (["--budget-gib", "-8"], "--budget-gib -8.0: must be"),
                               (["--budget-gib", "nan"], "--budget-gib nan: must be"),
                               (["--budget-gib", "eight"], "invalid float value: 'eight'"),
                               (["--type", "f16"], "invalid choice: 'f16'"),
                               (["--pcie-gbps", "0"], "must be positive"),
                               ([], "no llama-bench there")):
            p = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, extra)
            self.assertIn(message, p.stderr, extra)


if __name__ == "__main__":
    unittest.main()
