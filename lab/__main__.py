"""``python -m lab`` runs the rt3lab CLI."""

from lab.cli import main

main()
