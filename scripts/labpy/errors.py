"""The lab's one-line failures."""


class LabError(Exception):
    """A failure reported as one line, 'error: <message>', with a non-zero exit."""
