"""gpu.sh's stages with stand-ins for llama.cpp's tools (no GPU, no llama.cpp):

  python3 -m unittest discover -s bench/llama -p 'test_*.py'
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

from test_placement import fake_tools  # noqa: E402


class GpuShWithFakeTools(unittest.TestCase):
    """gpu.sh's build, models and dense stages with a finished fake build: what reaches run.py."""

    def gpu_sh(self, tmp: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
        here = tmp / "here"
        if not here.exists():
            (here / "bench").mkdir(parents=True)
            (here / "bench" / "llama").symlink_to(Path(__file__).resolve().parent)
            (here / "shim" / "build").mkdir(parents=True)
            (tmp / "libspillway-cuda.so").rename(here / "shim" / "build" / "libspillway-cuda.so")
            work = tmp / "llama"
            (work / "build").mkdir(parents=True)
            (tmp / "bin").rename(work / "build" / "bin")  # built: build.sh does nothing
        out = tmp / f"out{len(list(tmp.glob('out*')))}"
        out.mkdir()
        env = {**os.environ, "OUT": str(out), "LLAMA_WORK": str(tmp / "llama"),
               "MODELS": str(tmp / "models"), "CALLS": str(tmp / "calls.txt"),
               "BENCH_LOGS": str(tmp / "logs"), "RUN_ARGS": "--reps 1", **env}
        p = subprocess.run(["sh", "bench/llama/gpu.sh", "build", "models", "wait-build", "dense"],
                           cwd=here, env=env, capture_output=True, text=True, timeout=120)
        return p, out

    def test_type_and_budget_reach_run_py(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            fake_tools(tmp, ("dense-q8_0.gguf", "moe-q8_0.gguf", "dense-bf16.gguf", "moe-bf16.gguf"))
            p, out = self.gpu_sh(tmp, {"WTYPE": "bf16", "BUDGET_GIB": "8"})
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            [f] = out.glob("*-llama-dense-bf16.json")
            r = json.loads(f.read_text())
            self.assertEqual(r["settings"]["weight_type"], "bf16")
            self.assertEqual(r["models"]["dense"]["budget_bytes"], 8 << 30)
            self.assertIn("dense-bf16.gguf", (tmp / "calls.txt").read_text())
            self.assertTrue((out / "logs.tar.gz").is_file())

            (tmp / "calls.txt").unlink()
            p, out = self.gpu_sh(tmp, {})  # unset: as before, Q8_0 at 40 % of the model
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            [f] = out.glob("*-llama-dense.json")
            r = json.loads(f.read_text())
            self.assertEqual(r["settings"]["weight_type"], "q8_0")
            self.assertEqual(r["settings"]["budget_fraction"], 0.4)
            self.assertNotIn("bf16", (tmp / "calls.txt").read_text())

            p, out = self.gpu_sh(tmp, {"WTYPE": "f16"})
            self.assertEqual(p.returncode, 2)
            self.assertIn("WTYPE=f16: expected q8_0 or bf16", p.stderr)
            self.assertEqual(list(out.iterdir()), [])


if __name__ == "__main__":
    unittest.main()
