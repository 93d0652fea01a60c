"""Payment state polled from rails that send no notifications (NetSuite, SAP, Salesforce).

``states`` is pure: a document's fields as the rail returns them, in, a
:class:`states.PaymentState` out. ``schedule`` is pure: which delivered documents
are due a poll, from the last poll and a back-off, on a clock passed in. ``poller``
is the thin I/O behind ``railyard rails poll RAIL``: it reads the rail, and publishes
changes to ``invoices.status`` with the notification receiver's record builder.
"""
