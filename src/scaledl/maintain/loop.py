"""`run_maintain`: check → fine-tune → re-optimize → publish → roll out → compare → decide.

Everything a user can get wrong (repository, model, data, server, key) is checked before any
work starts, so bad input exits 2 with nothing written. The rest runs under the model's lock;
each step appends a record to the decision log. With a server, a failure after the new version
reached the server rolls it back before the error is reported: the live version never stops
serving and is never replaced by a version that was not measured.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaledl.errors import ScaledlError, UsageError
from scaledl.maintain import datasets
from scaledl.maintain.api import (
    MaintainRequest,
    MaintainResult,
    Outcome,
    Prepared,
    ServerOptions,
)
from scaledl.maintain.lineage import training_source
from scaledl.maintain.log import DecisionLog
from scaledl.maintain.repository import ModelRepository
from scaledl.maintain.server import ServerLink
from scaledl.maintain.steps import Run

# The request and result types live in `api`; importable from here as before.
__all__ = [
    "MaintainRequest",
    "MaintainResult",
    "Outcome",
    "Prepared",
    "ServerOptions",
    "prepare",
    "run_maintain",
]
log = logging.getLogger(__name__)


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def prepare(req: MaintainRequest) -> Prepared:
    repo = ModelRepository(req.repository, req.model)
    link = ServerLink(req.server.url, req.server.api_key, req.server.cacert) if req.server else None
    status = link.probe(req.model) if link else None
    routing = status["routing"] if status else None
    live_version = _live_version(repo, req, routing)
    if status is not None:
        _same_repository(repo, status["repository_versions"])
    live = repo.open(live_version)
    task = live.manifest.task
    if task != "classification":
        raise UsageError(
            f"model {req.model} is a {task} model; maintain compares accuracy and supports "
            "classification models"
        )
    source = training_source(repo, live_version, live)
    old, old_config = datasets.load_old(source.package, task)
    new = datasets.load_new(req.new_data, old_config, req.config.split, task)
    datasets.check_compatible(live, new, f"--new-data {req.new_data}")
    sets = datasets.eval_sets(old, new, req.new_data)
    if req.eval_data is not None:
        trusted = datasets.load_eval(req.eval_data, old_config, task)
        sets[0] = trusted
    return Prepared(
        repo, link, live_version, live, source, task, old, old_config, new, sets, routing
    )


def _live_version(
    repo: ModelRepository, req: MaintainRequest, routing: dict[str, Any] | None
) -> str:
    if routing is None:
        if req.live_version is None:
            return repo.newest()
        repo.path(req.live_version)  # a usage error naming the versions there are
        return req.live_version
    primary = str(routing["primary"])
    if req.live_version is not None and req.live_version != primary:
        raise UsageError(
            f"--live-version {req.live_version}: the server serves version {primary} of "
            f"{req.model}; leave --live-version out with --server"
        )
    busy = [f"{k} {routing[k]}" for k in ("canary", "shadow") if routing.get(k)]
    if busy:
        raise UsageError(
            f"model {req.model} already has a {' and a '.join(busy)} on the server; finish that "
            f"rollout first (`scaledl models promote|rollback {req.model}`)"
        )
    if primary not in repo.versions():
        raise UsageError(
            f"the server serves {req.model} version {primary}, which {repo.root} does not hold; "
            "give maintain the repository folder the server serves"
        )
    return primary


def _same_repository(repo: ModelRepository, served: list[str]) -> None:
    here = list(repo.versions())
    if sorted(served) != sorted(here):
        raise UsageError(
            f"the server's repository holds versions {', '.join(served) or 'none'} of "
            f"{repo.model}, {repo.root} holds {', '.join(here)}; give maintain the repository "
            "folder the server serves"
        )


def run_maintain(req: MaintainRequest) -> MaintainResult:
    """Run the loop once; raises ScaledlError (exit 2 bad input, exit 1 not completed)."""
    prepared = prepare(req)
    run_id = new_run_id()
    log_path = req.log_path or prepared.repo.log_path()
    work = req.work_dir or Path("runs") / f"maintain-{req.model}" / run_id
    dlog = DecisionLog(log_path, run_id, req.model)
    try:
        with prepared.repo.lock():
            return Run(req, prepared, dlog, Path(work)).execute()
    except ScaledlError as exc:
        if dlog.records:
            dlog.write("aborted", error=exc.message, exit_code=exc.exit_code)
        raise
    except BaseException as exc:  # a crash or Ctrl-C: the log still says the run stopped
        if dlog.records:
            dlog.write("aborted", error=repr(exc))
        raise
    finally:
        if prepared.link is not None:
            prepared.link.close()
