import unittest

from spillway import plan as P

GIB = P.GIB


def dense(layers=4, mlp=3 * GIB // 10, attn=GIB // 10):
    us = []
    for i in range(layers):
        us.append(P.Unit(f"l{i}.qkv", attn, 1.0, 6144, attn))
        us.append(P.Unit(f"l{i}.mlp", mlp, 1.0, 14336, mlp // 3))
    return us


class SplitRows(unittest.TestCase):
    def test_rounds_to_alignment(self):
        self.assertEqual(P.split_rows(14336, 0.4), 5760)   # 5734.4 -> 90 * 64
        self.assertEqual(P.split_rows(14336, 0.4) % 64, 0)

    def test_extremes(self):
        self.assertEqual(P.split_rows(100, 0.0), 0)
        self.assertEqual(P.split_rows(100, 1.0), 100)
        self.assertEqual(P.split_rows(10, 0.99, align=64), 0)  # 9.9 rows round to 0 tiles

    def test_bad_input(self):
        with self.assertRaises(ValueError):
            P.split_rows(0, 0.5)
        with self.assertRaises(ValueError):
            P.split_rows(64, 1.5)


class Rates(unittest.TestCase):
    def test_both_roads_finish_together(self):
        f = P.gpu_fraction_from_rates(49.0, 77.0)
        self.assertAlmostEqual(f / 49.0, (1 - f) / 77.0)

    def test_one_road(self):
        self.assertEqual(P.gpu_fraction_from_rates(50.0, 0.0), 1.0)
        with self.assertRaises(ValueError):
            P.gpu_fraction_from_rates(0.0, 0.0)


class Placement(unittest.TestCase):
    def test_everything_fits(self):
        p = P.plan_placement(dense(), 8 * GIB, GIB // 2, GIB, 0.4)
        self.assertTrue(all(x.in_vram for x in p.placements))
        self.assertEqual(p.host_bytes, 0)
        self.assertEqual(p.staging_bytes, 0)
        self.assertIn("nothing spilled", p.notes[0])

    def test_budget_respected_and_staging_charged(self):
        us = dense(layers=8)
        budget, resident, reserve = 2 * GIB, GIB // 4, GIB // 4
        p = P.plan_placement(us, budget, resident, reserve, 0.4)
        self.assertGreater(p.host_bytes, 0)
        self.assertLessEqual(p.vram_weight_bytes + p.staging_bytes + resident + reserve, budget)
        self.assertEqual(p.staging_bytes, 2 * max(u.stream_block_bytes for u in us))
        self.assertEqual(p.vram_weight_bytes + p.host_bytes, sum(u.nbytes for u in us))

    def test_spilled_units_are_split(self):
        p = P.plan_placement(dense(layers=8), 2 * GIB, GIB // 4, GIB // 4, 0.4)
        for x in p.spilled():
            self.assertEqual(x.gpu_rows, P.split_rows(x.unit.split_rows, 0.4))
            self.assertEqual(x.gpu_rows + x.cpu_rows, x.unit.split_rows)
        for x in p.placements:
            if x.in_vram:
                self.assertEqual(x.cpu_rows, 0)

    def test_dense_units_kept_before_experts(self):
        us = [P.Unit("attn", GIB // 2, 1.0, 64, 0), P.Unit("experts", GIB, 0.25, 64, 0),
              P.Unit("attn2", GIB // 2, 1.0, 64, 0)]
        p = P.plan_placement(us, int(1.5 * GIB), 0, 0, 0.5)
        by = p.by_name()
        self.assertTrue(by["attn"].in_vram and by["attn2"].in_vram)
        self.assertFalse(by["experts"].in_vram)

    def test_small_and_late_units_stay_first(self):
        # 8 layers of qkv (0.1 GiB) and MLP (0.3 GiB), 1.9 GiB free for weights less the
        # staging: every qkv stays, then MLPs from the last layer backwards.
        us = dense(layers=8)
        p = P.plan_placement(us, 2 * GIB + GIB // 2, GIB // 4, GIB // 4, 0.4)
        by = p.by_name()
        self.assertTrue(all(by[f"l{i}.qkv"].in_vram for i in range(8)))
        kept = [i for i in range(8) if by[f"l{i}.mlp"].in_vram]
        self.assertEqual(kept, list(range(8 - len(kept), 8)))
        self.assertGreater(len(kept), 0)
        self.assertLess(len(kept), 8)

    def test_budget_too_small_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "smaller than what must stay in VRAM"):
            P.plan_placement(dense(), GIB, GIB, GIB // 2, 0.5)
        with self.assertRaises(ValueError):
            P.plan_placement(dense(), 0, 0, 0, 0.5)

    def test_duplicate_names_refused(self):
        with self.assertRaises(ValueError):
            P.plan_placement([P.Unit("a", 1), P.Unit("a", 1)], GIB, 0, 0, 0.5)

    def test_bound(self):
        us = [P.Unit("a", 10**9, 1.0, 6400, 0)]  # 1 GB, 6400 rows
        p = P.plan_placement(us, GIB, 0, GIB - 1, 0.5)      # nothing fits: spilled
        self.assertFalse(p.placements[0].in_vram)
        # Half the rows each road: 0.5 GB at 50 GB/s = 10 ms on each.
        self.assertAlmostEqual(P.decode_bound_s(p, 50.0, 50.0, 3000.0), 0.010, places=6)
        # The slower road decides.
        self.assertAlmostEqual(P.decode_bound_s(p, 50.0, 25.0, 3000.0), 0.020, places=6)


if __name__ == "__main__":
    unittest.main()
