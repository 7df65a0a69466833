"""Speaking: the Speaker synthesizes answers as voice messages and ``say`` recordings.

``decider.py`` is pure; ``actor.py`` the pykka shell around the text-to-speech port; ``spoken.py`` the pure
filter from written text to what a voice should say (the voice channel uses it too)."""
