"""`python -m power_meter ...`: the `rt3lab meter` commands alone, without the lab's start-up.

Used where start-up time matters (a recorder started by a script). Exit codes as `rt3lab`:
2 with one line for bad input, 1 for other failures, 130 when interrupted.
"""

import sys

import click
import typer

from power_meter.cli import app


def main() -> None:
    """Run the meter commands with `rt3lab`'s exit codes."""
    command = typer.main.get_command(app)
    try:
        command.main(args=sys.argv[1:], prog_name="python -m power_meter", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("rt3lab meter: interrupted", err=True)
        sys.exit(130)
    except (ValueError, FileNotFoundError) as exc:
        click.echo(f"rt3lab meter: error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        click.echo(f"rt3lab meter: failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
