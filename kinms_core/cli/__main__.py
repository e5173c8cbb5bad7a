"""``python -m kinms_core.cli``: the ``kinms-core`` command."""

import sys

from . import main

sys.exit(main())
