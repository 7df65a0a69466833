"""Hearing: the Transcriber turns audio clips (attachments, voice messages) into text with a speech engine.

``decider.py`` is the pure ``decide``/``evolve`` over one clip's stream; ``actor.py`` the pykka shell that
runs the speech-to-text port."""
