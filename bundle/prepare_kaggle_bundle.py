"""`python -m bundle.prepare_kaggle_bundle`: the same command as `python -m bundle`."""
from bundle.cli import run

if __name__ == "__main__":
    raise SystemExit(run())
