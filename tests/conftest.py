"""Shared pytest setup. Keep minimal; areas may append fixtures."""

import os
import sys

# Lets any test `import zoo` (tests/zoo.py: tiny configs of every model).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
