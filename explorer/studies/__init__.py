"""What the views compute from traces: pure functions and runs of the engine.

Imports only the engine (and inputs for errors)."""
