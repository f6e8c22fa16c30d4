"""The ``companyos`` command line: parsing and printing only, over the library API.

The console script imports this package before :func:`main` can catch anything, and the
imports (typer, pydantic, the commands) take a noticeable moment: a Ctrl-C during them is
one line and exit 130 here, not a traceback.
"""

import sys

try:
    from generator.cli.main import app, entry, main
except KeyboardInterrupt:  # pragma: no cover - timing-dependent; tested through a subprocess
    sys.stderr.write("companyos: interrupted; nothing was written\n")
    raise SystemExit(130) from None

__all__ = ["app", "entry", "main"]
