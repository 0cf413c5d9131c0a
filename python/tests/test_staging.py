import unittest

from spillway.engine import DoubleBuffer


class DoubleBufferTest(unittest.TestCase):
    def test_in_order_pass_copies_only_the_first_block_on_demand(self):
        d = DoubleBuffer(5)
        steps = [d.request(i) for i in range(5)]
        self.assertEqual(steps[0], (0, True, 1))
        for i, (slot, copy_now, nxt) in enumerate(steps[1:], 1):
            self.assertEqual(slot, i % 2)
            self.assertFalse(copy_now, f"block {i} was prefetched")
            self.assertEqual(nxt, i + 1 if i + 1 < 5 else None)

    def test_prefetch_never_targets_the_buffer_in_use(self):
        d = DoubleBuffer(7)
        for i in [0, 1, 2, 5, 6, 0, 3, 4, 4, 1]:
            slot, _, nxt = d.request(i)
            if nxt is not None:
                self.assertNotEqual(nxt % 2, slot)
            self.assertEqual(d.held[slot], i)

    def test_out_of_order_block_is_copied_now(self):
        d = DoubleBuffer(6)
        d.request(0)
        self.assertEqual(d.request(3), (1, True, 4))
        self.assertEqual(d.request(4), (0, False, 5))

    def test_second_pass_reuses_what_is_still_held(self):
        d = DoubleBuffer(2)
        d.request(0)
        d.request(1)
        self.assertEqual(d.request(0), (0, False, None))   # both blocks fit: nothing to copy
        d3 = DoubleBuffer(3)
        for i in range(3):
            d3.request(i)
        # Buffer 0 holds block 2: block 0 is copied; block 1 is still in buffer 1.
        self.assertEqual(d3.request(0), (0, True, None))

    def test_bad_index(self):
        with self.assertRaises(IndexError):
            DoubleBuffer(2).request(2)


if __name__ == "__main__":
    unittest.main()
