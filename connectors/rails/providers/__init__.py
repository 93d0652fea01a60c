"""The rails: one module per rail, each registering its factory with
:func:`connectors.rails.registry.register` under the rail's name.

The registry imports every module of this package, so every module here must be a
rail named like its module (``tests/unit/test_rails_registry.py`` holds this); code
that rails share lives beside this package, in ``connectors/rails/`` (``base``,
``config``, ``http``, ``ubl`` ...). A rail never imports another rail, nor the sandbox
(``tests/unit/test_layers.py``).
"""
