"""``python -m vramcore``: the command line."""

from vramcore.cli import main

raise SystemExit(main())
