"""spillway: run a PyTorch/transformers model under a VRAM budget, its spilled weights read
from both sides at once (GPU zero-copy over PCIe, CPU from DRAM). See docs/torch.md."""

from .model import Placed, find_units, place
from .plan import Plan, Unit, gpu_fraction_from_rates, plan_placement, split_rows

__all__ = ["place", "find_units", "Placed", "Plan", "Unit", "plan_placement", "split_rows",
           "gpu_fraction_from_rates"]
