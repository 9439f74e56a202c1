"""Building blocks of the local Functions host; ``devhost.host`` puts them together.

``functions`` indexes the app, ``routes`` parses and matches route templates, ``router`` and
``invoke`` run HTTP functions, ``server`` is the HTTP transport, ``settings`` reads
``local.settings.json``, and ``messages`` holds the types they share.
"""
