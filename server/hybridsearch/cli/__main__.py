"""`python -m hybridsearch.cli ARGS` runs the `hybridsearch` command."""

import sys

from hybridsearch.cli import main

sys.exit(main())
