"""`python -m dagu`."""
import sys

from dagu.cli import main

sys.exit(main())
