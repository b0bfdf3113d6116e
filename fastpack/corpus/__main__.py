import sys

from fastpack.corpus.cli import main
from fastpack.errors import run_main

sys.exit(run_main(main))
