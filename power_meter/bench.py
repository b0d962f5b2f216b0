"""Placeholder command module; its package fills it in."""

import typer

app = typer.Typer()
