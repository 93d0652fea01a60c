"""Railyard's stream side: the domain, the wire formats, the Faust agents and the CLI."""

from streams.compiled import install

install()  # before any other module: the hot path loads compiled when a current build exists
