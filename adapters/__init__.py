"""Adapters: the outside world (Discord, the console, the LLM endpoint, configuration) in and out."""
