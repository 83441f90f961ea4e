"""`python -m kore_sessions.cli`: the `kore-sessions` command."""

import sys

from kore_sessions.cli.parser import main

sys.exit(main())
