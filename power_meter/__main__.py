"""`python -m power_meter ...`: the `rt3lab meter` commands alone, without the lab's start-up.

Used where start-up time matters (a recorder started by a script). Exit codes as `rt3lab`:
2 for bad usage or bad input (one line), 1 for other failures, 130 when interrupted.
"""

import sys

import typer

from power_meter.cli import app


def main() -> None:
    """Run the meter commands with `rt3lab`'s exit codes."""
    command = typer.main.get_command(app)
    try:
        # Standalone mode: usage errors exit 2 with click's message, --help and Exit work.
        command.main(args=sys.argv[1:], prog_name="python -m power_meter", standalone_mode=True)
    except KeyboardInterrupt:
        typer.echo("rt3lab meter: interrupted", err=True)
        sys.exit(130)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"rt3lab meter: error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        typer.echo(f"rt3lab meter: failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
