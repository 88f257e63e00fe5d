"""The lab's one-line failures."""


class LabError(Exception):
    """A failure reported as one line, 'error: <message>', with a non-zero exit."""


class QemuCrashed(LabError):
    """QEMU itself failed (an emulator assertion, say), as opposed to the guest."""
