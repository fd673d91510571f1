"""``python -m margin`` is the ``margin`` command."""

from margin.cli import main

main()
