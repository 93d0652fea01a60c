"""``python -m streams.cli``: the ``railyard`` command without the installed script."""

from streams.cli.main import main

main()
