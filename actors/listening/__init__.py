"""Listening: hearing people in a guild's voice channel (with consent), one utterance at a time."""
