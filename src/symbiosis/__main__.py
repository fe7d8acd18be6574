"""``python -m symbiosis``: the same as the ``symbiosis`` command."""

from .cli import main

main()
