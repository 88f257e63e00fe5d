"""The dax_hmem lab: scenarios, guest runs in QEMU, and their analysis."""
