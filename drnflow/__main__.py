"""`python -m drnflow` is the `drnflow` command."""

import sys

from drnflow.cli import main

sys.exit(main())
