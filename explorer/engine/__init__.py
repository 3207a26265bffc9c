"""The engine: load a pipeline, run it, record every step in a `Trace`.

Knows no screen, chart or study."""
