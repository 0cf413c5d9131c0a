"""Tests of the llama.cpp benchmark's logic, without a GPU or llama.cpp.

  python3 -m unittest discover -s bench/llama -p 'test_*.py'
The GGUF writer test also needs numpy and llama.cpp's gguf-py (LLAMA_GGUF_PY=SRC/gguf-py);
it is skipped, saying so, without them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from placement import (Placement, bench_args, parse_bench_json, parse_fit_args,  # noqa: E402
                       parse_shim_log, placement_from_args, split)
from shapes import DENSE, MOE, TINY, model_bytes, tensors  # noqa: E402


class Shapes(unittest.TestCase):
    def test_sizes_match_issue_12(self) -> None:
        # 40 % of the dense model is the 2935 MiB budget of issue 12.
        self.assertEqual(int(model_bytes(DENSE) * 0.4) >> 20, 2935)
        self.assertAlmostEqual(model_bytes(MOE) / 1e9, 7.82, places=2)

    def test_q8_0_sizes(self) -> None:
        t = {x.name: x for x in tensors(DENSE)}
        self.assertEqual(t["blk.0.ffn_up.weight"].nbytes, 14336 * 4096 // 32 * 34)
        self.assertEqual(t["output_norm.weight"].nbytes, 4096 * 4)
        moe = {x.name: x for x in tensors(MOE)}
        self.assertEqual(moe["blk.0.ffn_down_exps.weight"].dims, (8, 4096, 3584))
        self.assertEqual(moe["blk.0.ffn_down_exps.weight"].read_fraction, 0.25)


class Split(unittest.TestCase):
    def test_all_in_vram(self) -> None:
        s = split(DENSE, Placement(n_gpu_layers=99))
        embd = 32000 * 4096 // 32 * 34
        self.assertEqual(s.host, 0)
        self.assertEqual(s.cpu, 0)  # one embedding row per token: not counted
        self.assertEqual(s.vram, model_bytes(DENSE) - embd)
        self.assertAlmostEqual(s.bound_tps(), 3000e9 / s.vram, places=6)

    def test_layer_split_puts_the_last_layers_on_the_gpu(self) -> None:
        s = split(DENSE, Placement(n_gpu_layers=11))
        per_layer = sum(t.nbytes for t in tensors(DENSE) if t.layer == 0)
        output = sum(t.nbytes for t in tensors(DENSE) if t.name.startswith("output"))
        self.assertEqual(s.vram, 10 * per_layer + output)  # layers 22..31 and the output
        self.assertEqual(s.cpu, 22 * per_layer)
        self.assertEqual(s.host, 0)

    def test_shim_split_of_the_weight_buffer(self) -> None:
        full = split(DENSE, Placement())
        part = 2600 << 20
        s = split(DENSE, Placement(vram_part=part))
        self.assertEqual(s.vram + s.host, full.vram)
        self.assertEqual(s.gpu_in_vram, part)
        self.assertAlmostEqual(s.vram, part, delta=2 << 20)  # dense: every byte is read
        # the bound of issue 12: 2.58 GB of weights in VRAM, 4.98 GB spilled: about 10 tok/s
        self.assertGreater(s.bound_tps(), 9.5)
        self.assertLess(s.bound_tps(), 10.5)
        none = split(DENSE, Placement(vram_part=0))
        self.assertEqual(none.vram, 0)
        self.assertAlmostEqual(none.bound_tps(), 51e9 / full.vram, places=6)

    def test_moe_experts_on_cpu(self) -> None:
        p = placement_from_args(["-ngl", "99", "-ot", "exps=CPU"])
        s = split(MOE, p)
        exps = sum(t.nbytes for t in tensors(MOE) if t.is_expert)
        self.assertEqual(s.cpu, exps // 4)  # top-2 of 8
        self.assertEqual(s.host, 0)
        self.assertEqual(s.gpu_buffer, sum(-(-t.nbytes // 128) * 128 for t in tensors(MOE)
                                           if not t.is_expert and t.name != "token_embd.weight"))


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

    def test_tiny_model_reads_back(self) -> None:
        gguf_py = os.environ.get("LLAMA_GGUF_PY")
        if not gguf_py:
            self.skipTest("LLAMA_GGUF_PY (llama.cpp's gguf-py folder) is not set")
        try:
            import numpy  # noqa: F401
        except ImportError:
            self.skipTest("numpy is not installed")
        sys.path.insert(0, gguf_py)
        import gguf
        from make_gguf import write
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "tiny.gguf"
            size = write(gguf, TINY, path)
            self.assertEqual(size, path.stat().st_size)
            r = gguf.GGUFReader(str(path))
            want = tensors(TINY)
            self.assertEqual([t.name for t in r.tensors], [t.name for t in want])
            for got, t in zip(r.tensors, want):
                self.assertEqual(int(got.n_bytes), t.nbytes, t.name)
                self.assertEqual(list(int(x) for x in got.shape), list(reversed(t.dims)), t.name)
            q = r.tensors[2].data  # output.weight: Q8_0 blocks with the fixed scale
            self.assertEqual(q.dtype, numpy.uint8)
            scale = numpy.frombuffer(bytes(q.reshape(-1)[:2]), dtype=numpy.float16)[0]
            self.assertAlmostEqual(float(scale), 0.02 / 73.3, places=6)
            self.assertEqual(r.fields["llama.block_count"].contents(), TINY.n_layer)


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


class RunWithFakeTools(unittest.TestCase):
    """run.py end to end with stand-ins for llama.cpp's tools: arguments, environment, JSON."""

    def test_dense_run(self) -> None:
        import subprocess
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            (tmp / "bin").mkdir()
            for tool in ("llama-bench", "llama-fit-params", "llama-completion"):
                f = tmp / "bin" / tool
                f.write_text(FAKE_TOOL)
                f.chmod(0o755)
            (tmp / "models").mkdir()
            (tmp / "models" / "dense-q8_0.gguf").write_bytes(b"\0" * 1000)  # exists: not written
            shim = tmp / "libspillway-cuda.so"
            shim.write_bytes(b"")
            out = tmp / "r.json"
            env = {**os.environ, "CALLS": str(tmp / "calls.txt"), "PATH": os.environ.get("PATH", "")}
            p = subprocess.run([sys.executable, str(Path(__file__).parent / "run.py"), "--bin",
                                str(tmp / "bin"), "--gguf-py", str(tmp), "--shim", str(shim),
                                "--models-dir", str(tmp / "models"), "--out", str(out),
                                "--shapes", "dense", "--reps", "1", "--pcie-gbps", "25.5"],
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            r = json.loads(out.read_text())["models"]["dense"]
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
            self.assertEqual(json.loads(out.read_text())["bandwidth_gbps"]["pcie"], 25.5)
            t = c["shim"]["per_token"]
            bound = 1 / (t["vram_bytes"] / 3000e9 + t["host_bytes"] / 25.5e9 + t["cpu_bytes"] / 100e9)
            self.assertAlmostEqual(c["shim"]["bound_decode_tps"], bound, places=2)
            calls = (tmp / "calls.txt").read_text().splitlines()
            vram = [x for x in calls if x.startswith("llama-bench") and "-ngl 99" in x]
            self.assertIn("LD_PRELOAD= LIMIT=", vram[0])  # the ceiling runs without the shim
            self.assertIn(f"LD_PRELOAD={shim}", vram[1])
            greedy = [x for x in calls if x.startswith("llama-completion")]
            self.assertTrue(all("--temp 0 --seed 42" in x and "-fit off" in x for x in greedy))

    def test_bad_arguments_are_refused(self) -> None:
        import subprocess
        run = str(Path(__file__).parent / "run.py")
        base = [sys.executable, run, "--bin", "/nonexistent", "--gguf-py", "/x", "--shim", "/x",
                "--models-dir", "/tmp", "--out", "/tmp/x.json"]
        for extra, message in ((["--shapes", "huge"], "unknown shape 'huge'"),
                               (["--configs", "cpu"], "unknown configuration 'cpu'"),
                               (["--budget-fraction", "1.5"], "must be in (0, 1]"),
                               (["--pcie-gbps", "0"], "must be positive"),
                               ([], "no llama-bench there")):
            p = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, extra)
            self.assertIn(message, p.stderr, extra)


if __name__ == "__main__":
    unittest.main()
