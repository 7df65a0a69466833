"""Voice channels: one guild's voice session (join, leave, voice on/off, playback) and its Speaker.

``decider.py`` is the pure ``decide``/``evolve`` over the guild's voice stream; ``actor.py`` the per-guild
pykka shell that synthesizes and plays answers in the channel."""
