"""`optimize_package`: the function behind `scaledl optimize`.

from scaledl.optimize.api import optimize_package
from scaledl.optimize.config import OptimizeConfig

result = optimize_package("runs/digits-cnn/package", OptimizeConfig(max_accuracy_drop=0.01),
                          out="runs/digits-cnn-optimized")
result.choice.chosen   # the Candidate chosen (None when nothing met the budget)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from scaledl.optimize.config import OptimizeConfig
from scaledl.optimize.finalize import SearchResult, finalize

log = logging.getLogger(__name__)


def optimize_package(
    path: Path | str,
    config: OptimizeConfig | None = None,
    out: Path | str | None = None,
    trust_code: bool = False,
) -> SearchResult:
    """Search for the fastest variant within the budget; write packages and reports to `out`.

    Returns the result whether or not the budget was met (`result.met`); the CLI turns an unmet
    budget into exit code 1. `trust_code` allows importing the class a custom model.json names
    (it is a run option, never part of the config a lineage records).
    """
    from scaledl.optimize.context import build_context
    from scaledl.optimize.output import check_out_dir, write_outputs
    from scaledl.optimize.search import Search

    started = time.monotonic()
    config = config or OptimizeConfig()
    if out is not None:
        check_out_dir(Path(out))
    ctx = build_context(path, config, started=started, trust_code=trust_code)
    search = Search(ctx)
    parent, constraints = search.run()
    result = finalize(search, parent, constraints)
    if out is not None:
        write_outputs(result, Path(out))
    result.seconds = ctx.elapsed()
    log.info(
        "optimize: %d candidates in %.1f s (budget %.0f s); chosen %s",
        len(result.candidates),
        result.seconds,
        config.time_budget_min * 60,
        result.choice.chosen.id if result.choice.chosen else None,
    )
    return result
