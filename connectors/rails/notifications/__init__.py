"""The rails' payment notifications: what each one means for an invoice, and the receiver.

``mapping`` is pure (a notification's body in, a :class:`mapping.Notification` out);
``verify`` checks each rail's signature scheme through the rail's SDK; ``ledger``
finds the Railyard invoice a notification names and the event ids already recorded;
``receiver`` is the HTTP endpoint behind ``railyard rails listen``.
"""
