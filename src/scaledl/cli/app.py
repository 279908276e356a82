"""The typer app, global options, and the one handler that maps errors to exit codes.

Each area registers its verbs from its own module (listed in COMMAND_MODULES), so the app stays
a table and areas do not edit each other's code.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from scaledl.cli.common import err_console
from scaledl.errors import ScaledlError

COMMAND_MODULES = [
    "scaledl.cli.train_cmds",
    "scaledl.cli.package_cmds",
    "scaledl.cli.data_cmds",
    "scaledl.cli.monitor_cmds",
    "scaledl.cli.serve_cmds",
    "scaledl.cli.bench_cmds",
    "scaledl.cli.optimize_cmds",
    "scaledl.cli.maintain_cmds",
]

app = typer.Typer(
    name="scaledl",
    help="Take a deep-learning model from data to an optimized, served and monitored deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (INFO)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors; no progress bars."),
) -> None:
    """scaledl: data → training → optimization → export → serving → monitoring."""
    from scaledl.ui import enable_progress

    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    configure_logging(level)
    if not quiet:
        enable_progress(err_console)


def configure_logging(level: int) -> None:
    from rich.logging import RichHandler

    rank = os.environ.get("RANK")
    fmt = f"[rank {rank}] %(name)s: %(message)s" if rank is not None else "%(name)s: %(message)s"
    handler = RichHandler(console=err_console, show_path=False, show_time=False)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx", "torch._dynamo", "torch._export"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Entry point: user mistakes print one message and exit 2 (a failed goal exits 1).

    Click handles its own usage errors (unknown flags, missing arguments) with exit code 2.
    """
    try:
        app()
    except ScaledlError as exc:
        from rich.markup import escape

        # messages may quote library errors with [brackets]: print them verbatim
        err_console.print(
            f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except OSError as exc:
        # the file system refused a path the user gave (a folder where a file is expected, no
        # permission, a full disk): say which, without a traceback
        from rich.markup import escape

        target = " → ".join(str(f) for f in (exc.filename, exc.filename2) if f) or "a file"
        err_console.print(
            f"[bold red]error:[/] {escape(target)}: {escape(exc.strerror or str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
