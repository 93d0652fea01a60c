"""The top layer: the ``railyard`` command, its sub-commands and the demo.

May import every layer below (agents, connectors, settings, wire, domain); nothing
imports it.
"""
