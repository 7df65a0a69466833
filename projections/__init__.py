"""Read models built from the log. They read events and nothing else, and can be rebuilt from zero.

``tracking.py`` keeps them in an SQLite file with the log position they have applied; the runner there
feeds them the log in global order.
"""
