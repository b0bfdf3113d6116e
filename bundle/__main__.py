"""`python -m bundle`: see bundle/cli.py."""
from bundle.cli import run

raise SystemExit(run())
