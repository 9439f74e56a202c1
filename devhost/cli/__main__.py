"""``python -m devhost.cli``: the same as the `wheelvault` command."""

import sys

from devhost.cli.main import main

sys.exit(main())
