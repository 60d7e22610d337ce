"""``crackal`` command line: one sub-command per job. User errors print one line and exit 1.

Each module here is one command group: ``segmentation`` (synth, train, pretrain, evaluate,
predict, export, demo), ``detect``, ``al`` (active-learning projects and ``simulate``), ``classify``,
``change`` and ``serve`` (``serve``: the labelling web app; ``serve-ml``: a project as Label
Studio's ML backend). The commands call ``crackal.api`` (``serve-ml``: ``crackal.app``);
nothing below the CLI knows of typer.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402

from crackal.cli import al, change, classify, detect, segmentation, serve  # noqa: E402
from crackal.errors import CrackalError, OptionError  # noqa: E402

app = typer.Typer(
    help="Crack and surface-defect segmentation for roads, pavements and bridges.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (segmentation.synth, segmentation.train, segmentation.pretrain, segmentation.evaluate, segmentation.predict,
                segmentation.export, segmentation.demo,
                al.simulate, serve.serve):
    app.command()(command)
app.add_typer(al.app, name="al")
app.add_typer(detect.app, name="detect")
app.add_typer(classify.app, name="classify")
app.add_typer(change.app, name="change")
app.command("serve-ml")(serve.serve_ml)

# Options whose flag is not the library's name with dashes.
FLAGS = {"time_limit_min": "--time-limit", "box_format": "--format", "initial_per_class": "--initial",
         "tolerances": "--tolerance", "settings": "--set", "crack_free": "--crack-free"}
err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 user error, 2 usage error)."""
    try:
        app(args=argv, standalone_mode=False, prog_name="crackal")
    except CrackalError as exc:
        message = exc.for_cli(FLAGS) if isinstance(exc, OptionError) else str(exc)
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        if hasattr(exc, "show"):  # click's errors (all usage errors are) print their usage and message
            exc.show()
        else:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return getattr(exc, "exit_code", 2)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted; a training run continues with --resume, a project with 'crackal al resume'")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
