"""The arithmetic of both roads against the unsplit reference (fp32 reference, bf16 inputs)."""

import unittest

import torch
import torch.nn.functional as F

from spillway import kernels as K

# bf16 has an 8-bit mantissa: results of sums of ~100 products agree to about 1e-2 relative.
RTOL = 2e-2


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

    def test_rows_part_writes_out(self):
        w = torch.randn(32, self.h, dtype=torch.bfloat16)
        out = torch.empty(3, 32, dtype=torch.bfloat16)
        K.rows_part(self.x, w, out=out)
        close(self, out, F.linear(self.x.float(), w.float()))

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
                    y += K.mlp_part(self.x, gu, dn, F.silu).float()
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
        gpu_road = K.experts_part_gather(self.x, idx, wt, gu_g, dn_g, F.silu)
        cpu_road = K.experts_part_loop(self.x, idx, wt, gu_c, dn_c, F.silu)
        close(self, gpu_road.float() + cpu_road.float(), ref)
        # The two implementations agree with each other on the same rows.
        close(self, K.experts_part_gather(self.x, idx, wt, gu_c, dn_c, F.silu),
              K.experts_part_loop(self.x, idx, wt, gu_c, dn_c, F.silu))


if __name__ == "__main__":
    unittest.main()
