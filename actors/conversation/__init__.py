"""Conversation: the Responder answers what people write or say, with the LLM and few-shot examples.

``decider.py`` is the pure ``decide``/``evolve`` over a conversation's stream; ``actor.py`` the pykka shell
that loads the state, calls the chat model and appends what was decided."""
