"""The one error class whose message is written for the visitor.

Every error of the inputs and studies layers that a visitor may cause subclasses `VisitorError`;
the web app shows its message as it is, and reports anything else as an internal error.
"""


class VisitorError(ValueError):
    """Bad input, explained: the message says what was wrong and what to change."""
