"""The desk: hi, help and status, and the record of each transport's sessions.

``decider.py`` (commands) and ``connection.py`` (connections and catch-ups) are pure; ``actor.py`` is the
pykka shell that runs both."""
