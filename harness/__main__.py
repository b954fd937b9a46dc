"""``python -m harness`` runs the ``harness`` command.

``python -m`` puts the working folder first on ``sys.path``; it is taken off again (the
harness itself is already imported), so a project's ``deepdiff.py`` or ``cryptography/`` can
never stand in for a library the harness imports. The project's own modules are appended to
``sys.path`` by the code that runs them.
"""

import os
import sys

if sys.path and not sys.flags.safe_path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from harness.cli import main

sys.exit(main())
