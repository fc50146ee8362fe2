"""``python -m fastal`` runs the ``fastal`` command."""

import sys

from .cli import main

sys.exit(main())
