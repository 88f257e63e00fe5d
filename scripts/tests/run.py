#!/usr/bin/env python3
"""Runs the lab's unit tests and prints 'unit: N passed, N failed'."""

import sys
import unittest
from pathlib import Path

here = Path(__file__).resolve().parent
suite = unittest.defaultTestLoader.discover(str(here), top_level_dir=str(here.parent))
result = unittest.TextTestRunner(verbosity=1).run(suite)
failed = len(result.failures) + len(result.errors)
print(f"unit: {result.testsRun - failed} passed, {failed} failed")
sys.exit(1 if failed or not result.testsRun else 0)
