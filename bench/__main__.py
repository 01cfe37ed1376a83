"""``python -m bench``: run the BleepStore benchmark (see bench/README.md)."""
import sys

from .run import main

sys.exit(main())
