"""``python -m freqlat.train`` runs the ``freqlat-train`` command (e.g. under torchrun)."""

import sys

from freqlat.train.cli import main

sys.exit(main())
