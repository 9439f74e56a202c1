"""Building blocks of the local Functions host; ``localhost`` (``LocalHost``) puts them together.

``functions`` indexes the app, ``routes`` parses and matches route templates, ``router`` and
``invoke`` run HTTP functions, ``server`` is the HTTP transport, ``settings`` reads
``local.settings.json``, and ``messages`` holds the types they share.

``background`` runs the other triggers: ``blobs`` plans blob functions and ``watcher``
delivers their blobs (``quarantine`` is the poison path); ``timers`` runs timer functions on
``ncrontab`` schedules; ``triggers`` is what they share. ``admin`` serves
``POST /admin/functions/{name}``.
"""
