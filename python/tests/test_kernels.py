"""The arithmetic of both roads against the unsplit reference (fp32 reference, bf16 inputs)."""

import unittest

import torch
import torch.nn.functional as F

from spillway import kernels as K

# bf16 has an 8-bit mantissa: results of sums of ~100 products agree to about 1e-2 relative.
RTOL = 2e-2
SILU = K.ACTIVATIONS["silu"]


def close(test, got, ref):
    err = (got.float() - ref.float()).abs().max().item()
    scale = ref.float().abs().max().item()
    test.assertLessEqual(err, RTOL * scale, f"max abs error {err} against max {scale}")


class Kernels(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(1)
        self.h, self.i, self.e = 64, 192, 4
        self.x = torch.randn(3, self.h, dtype=torch.bfloat16)

    def test_row_split_concatenates_to_reference(self):
        w = torch.randn(96, self.h, dtype=torch.bfloat16)
        ref = F.linear(self.x.float(), w.float())
        for g in (0, 32, 64, 96):
            parts = [K.rows_part(self.x, w[:g]), K.rows_part(self.x, w[g:])]
            close(self, torch.cat(parts, -1), ref)

    def test_activation_codes_are_found_by_value(self):
        from torch import nn
        cases = [(nn.SiLU(), "silu"), (F.silu, "silu"), (nn.GELU(), "gelu"),
                 (nn.GELU(approximate="tanh"), "gelu_tanh"), (nn.ReLU(), "relu"),
                 (lambda t: t * torch.sigmoid(t), "silu")]
        for fn, name in cases:
            self.assertEqual(K.act_code(fn), K.ACTIVATIONS[name], name)
        for unknown in (nn.Tanh(), lambda t: t * torch.sigmoid(1.702 * t), lambda t: 0,
                        lambda t: torch.relu(t) ** 2):
            self.assertIsNone(K.act_code(unknown))
        for name, code in K.ACTIVATIONS.items():
            h = torch.linspace(-3, 3, 7)
            self.assertEqual(K.act_code(lambda t, c=code: K.activate(t, c)), code, name)
            self.assertFalse(torch.equal(K.activate(h, code), h), name)
        with self.assertRaises(ValueError):
            K.activate(torch.zeros(1), 99)

    def test_mlp_split_adds_to_reference(self):
        gate = torch.randn(self.i, self.h, dtype=torch.bfloat16) / 8
        up = torch.randn(self.i, self.h, dtype=torch.bfloat16) / 8
        down = torch.randn(self.h, self.i, dtype=torch.bfloat16) / 8
        xf = self.x.float()
        ref = F.linear(F.silu(F.linear(xf, gate.float())) * F.linear(xf, up.float()), down.float())
        for g in (0, 64, 128, 192):
            y = torch.zeros(3, self.h)
            for lo, hi in ((0, g), (g, self.i)):
                if hi > lo:
                    gu, dn = K.mlp_road_blocks(gate, up, down, lo, hi)
                    self.assertEqual(gu.shape, (2 * (hi - lo), self.h))
                    self.assertTrue(dn.is_contiguous())
                    y += K.mlp_part(self.x, gu, dn, SILU).float()
            close(self, y, ref)

    def test_experts_gather_and_loop_match_reference(self):
        gate_up = torch.randn(self.e, 2 * self.i, self.h, dtype=torch.bfloat16) / 8
        down = torch.randn(self.e, self.h, self.i, dtype=torch.bfloat16) / 8
        idx = torch.tensor([[0, 2], [1, 3], [3, 0]])
        wt = torch.softmax(torch.randn(3, 2), -1)
        ref = torch.zeros(3, self.h)
        for t in range(3):
            for s in range(2):
                e = int(idx[t, s])
                g, u = F.linear(self.x[t].float(), gate_up[e].float()).chunk(2)
                ref[t] += F.linear(F.silu(g) * u, down[e].float()) * wt[t, s]
        g = 64
        blocks = []
        for lo, hi in ((0, g), (g, self.i)):
            per = [K.mlp_road_blocks(gate_up[j, :self.i], gate_up[j, self.i:], down[j], lo, hi)
                   for j in range(self.e)]
            blocks.append((torch.stack([p[0] for p in per]), torch.stack([p[1] for p in per])))
        (gu_g, dn_g), (gu_c, dn_c) = blocks
        gpu_road = K.experts_part_gather(self.x, idx, wt, gu_g, dn_g, SILU)
        cpu_road = K.experts_part_loop(self.x, idx, wt, gu_c, dn_c, SILU)
        close(self, gpu_road.float() + cpu_road.float(), ref)
        # The two implementations agree with each other on the same rows.
        close(self, K.experts_part_gather(self.x, idx, wt, gu_c, dn_c, SILU),
              K.experts_part_loop(self.x, idx, wt, gu_c, dn_c, SILU))


if __name__ == "__main__":
    unittest.main()
