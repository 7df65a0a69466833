"""Learning: the Trainer's datasets, examples, teaching (few-shot) and evaluation.

``decider.py`` is the pure ``decide``/``evolve`` over the ``learning`` stream; ``actor.py`` the pykka shell
(files, the LLM). Pure helpers beside them: ``examples`` (parsing imports), ``teaching`` (few-shot selection),
``evaluation`` (scores), ``command_line`` (a command's words and options). Fine-tuning
jobs and model choices have a room of their own: ``actors.tuning``."""
