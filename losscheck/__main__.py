"""``python -m losscheck``: the ``losscheck`` command."""
import sys

from .cli import main

sys.exit(main())
