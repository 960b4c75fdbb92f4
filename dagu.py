#!/usr/bin/env python3
"""Entry point: `python3 dagu.py ...` from a checkout (the zipapp uses the same main)."""
import sys

from dagu.cli import main

if __name__ == "__main__":
    sys.exit(main())
