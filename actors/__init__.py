"""Actors: pure deciders (domain logic, no I/O) and thin pykka shells that run them."""
