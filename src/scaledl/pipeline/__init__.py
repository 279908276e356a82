"""Orchestration: the stages composed into the jobs users run.

`train_recipe` (data → model → training → publish), `train_module` (the same for a user's own
`nn.Module`) and `run_recipe` (`scaledl run`: train → verify → evaluate → report). This layer
sits above every stage it composes; no stage imports it.
"""

from __future__ import annotations

from scaledl.pipeline.run import RunOutput, run_recipe
from scaledl.pipeline.train import ScaleOptions, TrainOutput, train_module, train_recipe

__all__ = ["RunOutput", "ScaleOptions", "TrainOutput", "run_recipe", "train_module", "train_recipe"]
