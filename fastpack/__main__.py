import sys

from fastpack.cli import main

sys.exit(main())
