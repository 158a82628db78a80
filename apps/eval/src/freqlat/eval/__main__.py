"""``python -m freqlat.eval`` runs the ``freqlat-eval`` command (e.g. under torchrun)."""

import sys

from freqlat.eval.cli import main

sys.exit(main())
