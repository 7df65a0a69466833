"""Learning: the Trainer's datasets, examples, evaluation, fine-tuning jobs and model choices.

``decider.py`` is the pure ``decide``/``evolve`` over the ``learning`` stream; ``actor.py`` the pykka shell
(files, the LLM, the fine-tuning service). Pure helpers beside them: ``examples`` (parsing imports),
``teaching`` (few-shot selection), ``evaluation`` (scores), ``finetune_rules`` (export records and checks)."""
