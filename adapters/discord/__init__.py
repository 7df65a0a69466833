"""The Discord transport: discord.py in, commands to the Router; replies out through the outbox."""
