"""Entry point for `python -m harness`."""

from harness.entry.cli import main

raise SystemExit(main())
