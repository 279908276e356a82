"""What a training command can check before torch is imported: the device and precision
choices, and whether torchrun started this process (a bad flag is reported in a second, not
after the seconds torch takes to import)."""

from __future__ import annotations

import os

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ
