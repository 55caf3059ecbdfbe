"""``python -m kinsight.cli``: the same as the ``kinsight`` command."""

import sys

from .main import main

sys.exit(main())
