import os
import sys

from fastpack.cli import main

code = main()
# Outputs and meta are written and closed by now; skip the interpreter's teardown, which after
# numba has loaded costs a quarter of a second of a short pack.
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
