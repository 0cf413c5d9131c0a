"""spillway.place on a tiny model with both roads simulated on the CPU: the same units, worker,
flag and arena as on a GPU, checked against the unplaced model."""

import errno
import os
import tempfile
import unittest
from unittest import mock

import torch
from torch import nn

import spillway
from spillway import uapi

from tests.tiny import tiny

RTOL = 3e-2


class PlaceTest(unittest.TestCase):
    def run_case(self, moe: bool, rows: int):
        ref_model = tiny(moe)
        ids = torch.randint(0, 97, (1, rows), generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            ref = ref_model(ids).float()
        model = tiny(moe)
        found = spillway.find_units(model)
        kinds = sorted({f.kind for f in found})
        self.assertEqual(kinds, ["experts", "o", "qkv"] if moe else ["mlp", "o", "qkv"])
        resident = sum(p.numel() * 2 for p in model.parameters()) - sum(f.unit.nbytes for f in found)
        budget = resident + 16 * 1024  # room for a unit or two, the rest spills
        model = spillway.place(model, budget, reserve=0, device="cpu", gpu_fraction=0.5,
                               cpu_threads=1, use_pool=False, decode_max_rows=4)
        info = model.spillway.summary()
        self.assertGreater(info["host_bytes"], 0)
        self.assertGreater(info["spilled_units"], 0)
        self.assertEqual(info["host_source"], "anonymous memory")
        with torch.no_grad():
            got = model(ids).float()
        err = (got - ref).abs().max().item() / ref.abs().max().item()
        self.assertLess(err, RTOL)
        self.assertEqual(got.argmax(-1).tolist(), ref.argmax(-1).tolist())
        self.addCleanup(model.spillway.engine.close)
        return model

    def test_inference_mode(self):
        """Decode loops run under torch.inference_mode (bench/decode.py): its tensors have no
        version counter (the H100's first benchmark run failed on that)."""
        ref_model, model = tiny(False), tiny(False)
        ids = torch.randint(0, 97, (1, 3), generator=torch.Generator().manual_seed(5))
        found = spillway.find_units(model)
        resident = sum(p.numel() * 2 for p in model.parameters()) - sum(f.unit.nbytes for f in found)
        model = spillway.place(model, resident + 16 * 1024, reserve=0, device="cpu",
                               gpu_fraction=0.5, cpu_threads=1, use_pool=False, decode_max_rows=4)
        self.addCleanup(model.spillway.engine.close)
        with torch.inference_mode():
            ref = ref_model(ids).float()
            got = model(ids).float()
        err = (got - ref).abs().max().item() / ref.abs().max().item()
        self.assertLess(err, RTOL)
        self.assertGreater(model.spillway.engine.stats["cpu_tasks"], 0)

    def test_dense_decode_rows(self):
        m = self.run_case(moe=False, rows=3)          # <= decode_max_rows: both roads
        self.assertGreater(m.spillway.engine.stats["cpu_tasks"], 0)

    def test_dense_prefill_rows(self):
        m = self.run_case(moe=False, rows=9)          # > decode_max_rows: the prefill path
        self.assertEqual(m.spillway.engine.stats["cpu_tasks"], 0)

    def test_moe(self):
        m = self.run_case(moe=True, rows=2)
        self.assertGreater(m.spillway.engine.stats["cpu_tasks"], 0)
        self.run_case(moe=True, rows=7)

    def test_greedy_32_tokens_identical(self):
        """Item 4 of issue 16 in the simulation: 32 greedy tokens (full recompute, both roads
        on every step) equal the unplaced model's, logits within bf16 tolerance."""
        for moe in (False, True):
            ref_model, model = tiny(moe), tiny(moe)
            found = spillway.find_units(model)
            resident = sum(p.numel() * 2 for p in model.parameters()) - sum(
                f.unit.nbytes for f in found)
            model = spillway.place(model, resident + 16 * 1024, reserve=0, device="cpu",
                                   gpu_fraction=0.4, cpu_threads=1, use_pool=False,
                                   decode_max_rows=64)
            ids = torch.randint(0, 97, (1, 4), generator=torch.Generator().manual_seed(5))
            ref_ids, got_ids, worst = ids, ids, 0.0
            with torch.no_grad():
                for _ in range(32):
                    r = ref_model(ref_ids)[0, -1].float()
                    g = model(got_ids)[0, -1].float()
                    worst = max(worst, ((g - r).abs().max() / r.abs().max()).item())
                    ref_ids = torch.cat([ref_ids, r.argmax().view(1, 1)], 1)
                    got_ids = torch.cat([got_ids, g.argmax().view(1, 1)], 1)
            self.assertEqual(got_ids.tolist(), ref_ids.tolist())
            self.assertLess(worst, RTOL)
            self.assertGreaterEqual(model.spillway.engine.stats["cpu_tasks"], 32)
            model.spillway.engine.close()

    def test_bad_arguments_are_clear_errors(self):
        with self.assertRaisesRegex(ValueError, "vram_budget must be positive"):
            spillway.place(tiny(), 0, device="cpu", gpu_fraction=0.5)
        with self.assertRaisesRegex(ValueError, "not meta"):
            spillway.place(tiny(), 1 << 20, device="meta", gpu_fraction=0.5)
        if not torch.cuda.is_available():
            with self.assertRaisesRegex(RuntimeError, "no CUDA device"):
                spillway.place(tiny(), 1 << 20)

    def test_resident_experts_decode_without_the_eager_loop(self):
        from spillway.units import ResidentExperts
        ref_model, model = tiny(True), tiny(True)
        found = spillway.find_units(model)
        resident = sum(p.numel() * 2 for p in model.parameters()) - sum(f.unit.nbytes for f in found)
        experts = [f.unit.nbytes for f in found if f.kind == "experts"]
        attn = sum(f.unit.nbytes for f in found if f.kind != "experts")
        # Room for the attention units and one layer's experts: the last layer's stay.
        model = spillway.place(model, resident + attn + experts[-1] + 1024, reserve=0,
                               device="cpu", gpu_fraction=0.5, cpu_threads=1, use_pool=False,
                               decode_max_rows=4)
        self.addCleanup(model.spillway.engine.close)
        kept = [m for m in model.modules() if isinstance(m, ResidentExperts)]
        self.assertEqual(len(kept), 1)
        self.assertIs(model.layers[-1].mlp.experts, kept[0])
        ids = torch.randint(0, 97, (1, 1), generator=torch.Generator().manual_seed(9))
        with torch.no_grad():
            ref = ref_model(ids).float()
            with mock.patch.object(type(kept[0].inner), "forward",
                                   side_effect=AssertionError("eager loop at decode")):
                got = model(ids).float()
            err = (got - ref).abs().max().item() / ref.abs().max().item()
            self.assertLess(err, RTOL)
            ids9 = torch.randint(0, 97, (1, 9), generator=torch.Generator().manual_seed(9))
            big = (model(ids9).float() - ref_model(ids9).float()).abs().max().item()
            self.assertLess(big / ref_model(ids9).float().abs().max().item(), RTOL)

    def test_unknown_activation_is_a_clear_error(self):
        model = tiny()
        model.layers[0].mlp.act_fn = nn.Tanh()
        with self.assertRaisesRegex(ValueError, r"layers\.0\.mlp: its activation \(Tanh\)"):
            spillway.place(model, 1 << 20, device="cpu", gpu_fraction=0.5)

    def test_measure_unit(self):
        from spillway.calibrate import measure_unit
        from spillway.units import SplitMLP
        model = self.run_case(False, 2)
        unit = next(m for m in model.modules() if isinstance(m, SplitMLP) and m.g and m.c)
        r = measure_unit(unit, reps=3)
        for k in ("gpu_alone_ms", "cpu_alone_ms", "together_ms"):
            self.assertGreater(r[k], 0, k)
        self.assertEqual(r["gpu_bytes"] + r["cpu_bytes"],
                         sum(b.numel() * b.element_size() for b in unit.blocks()))

    def test_everything_in_budget_leaves_model_alone(self):
        model = tiny()
        before = model.layers[0].mlp
        model = spillway.place(model, 1 << 30, reserve=0, device="cpu", gpu_fraction=0.5,
                               cpu_threads=1, use_pool=False)
        self.assertIs(model.layers[0].mlp, before)
        self.assertEqual(model.spillway.plan.host_bytes, 0)
        model.spillway.engine.close()


class UapiTest(unittest.TestCase):
    def test_header_values(self):
        u = uapi.load()
        if u is None:
            self.skipTest("kmod/include/uapi/spillway.h not found next to the package")
        # test/python/spillway.test.ts passes what the C compiler makes of the same header.
        alloc = int(os.environ.get("SPILLWAY_TEST_IOC_ALLOC", (3 << 30) | (40 << 16) | (0xB7 << 8) | 2))
        version = int(os.environ.get("SPILLWAY_TEST_IOC_VERSION", (2 << 30) | (32 << 16) | (0xB7 << 8)))
        self.assertEqual(u.ioc_alloc, alloc)
        self.assertEqual(u.ioc_version, version)
        self.assertEqual(u.device_name, "spillway")

    def test_parse_rejects_incomplete_header(self):
        with self.assertRaises(ValueError):
            uapi.parse_header("#define SPILLWAY_ABI_MAJOR 1\n")

    def test_no_pool_device(self):
        from spillway.memory import open_pool
        fd, why = open_pool("/nonexistent/spillway")
        self.assertIsNone(fd)
        self.assertIn("not present", why)

    def test_missing_header_is_a_reason(self):
        # SPILLWAY_UAPI_HEADER naming a missing file is not replaced by the checkout's header.
        # (The real device, a wrong ABI major and ENOMEM: test/python/pool_vm.py in the VM suite.)
        from spillway.memory import open_pool
        with tempfile.NamedTemporaryFile() as dev, \
                mock.patch.dict(os.environ, {"SPILLWAY_UAPI_HEADER": "/nonexistent/spillway.h"}):
            self.assertEqual(uapi.header_candidates(), ["/nonexistent/spillway.h"])
            self.assertIsNone(uapi.load())
            fd, why = open_pool(dev.name)
        self.assertIsNone(fd)
        self.assertEqual(why, "the spillway UAPI header was not found at /nonexistent/spillway.h "
                              "(set SPILLWAY_UAPI_HEADER to the module's kmod/include/uapi/spillway.h)")

    def test_not_the_device_is_a_reason(self):
        from spillway.memory import open_pool
        if uapi.load() is None:
            self.skipTest("kmod/include/uapi/spillway.h not found next to the package")
        with tempfile.NamedTemporaryFile() as dev:
            fd, why = open_pool(dev.name)
        self.assertIsNone(fd)
        self.assertEqual(why, f"{dev.name}: version ioctl failed: {os.strerror(errno.ENOTTY)}")


if __name__ == "__main__":
    unittest.main()
