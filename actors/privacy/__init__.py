"""Privacy: forget-me. A person's key, clips and exported lines are deleted for good.

``decider.py`` is the pure ``decide``/``evolve`` over the person's stream; ``actor.py`` the pykka shell that
has the forgetting port do the deleting."""
