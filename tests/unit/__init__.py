"""Fast unit tests of the delivery core (no server, no sleeps): ``python -m pytest tests/unit``."""
