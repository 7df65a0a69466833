"""Corrections: the CorrectionLog records corrections of Parley's answers and people's votes.

``decider.py`` is the pure ``decide``/``evolve`` over one answer's stream; ``actor.py`` the pykka shell."""
