"""The delivery core under both faces: one process's run, its journal, sender and stores."""
