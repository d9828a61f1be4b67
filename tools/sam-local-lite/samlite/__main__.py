"""``python -m samlite``: the :mod:`samlite.cli` command."""

import sys

from .cli import main

sys.exit(main())
