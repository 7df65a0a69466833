"""Fine-tuning: jobs that train a model on a dataset's examples, and which model answers where.

``decider.py`` is the pure decisions (a job started, polled to its end, a model activated), ``jobs.py`` what a job
is in the ``learning`` stream's state, ``records.py`` the training files and their checks, ``tokens.py`` token counts against a model's limits, ``models.py`` the model
in use where a person asks, and ``actor.py`` the FineTuner's pykka shell (the fine-tuning backend is a port).
Datasets and teaching are the learning room's (``actors.learning``); both rooms write the ``learning`` stream."""
