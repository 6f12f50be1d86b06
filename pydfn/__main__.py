"""``python -m pydfn``: the same as the ``pydfn`` command."""

from .cli import main

raise SystemExit(main())
