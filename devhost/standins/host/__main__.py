"""``python -m devhost.standins.host``: run the local Functions host until SIGINT or SIGTERM."""

import sys

from devhost.standins.host.localhost import main

sys.exit(main())
