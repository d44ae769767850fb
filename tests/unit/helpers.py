"""What unit tests import: the shared `T0` and catalog builder, by this tier's name.

Fixtures live in `conftest.py` (pytest finds them there); everything a test module imports
comes from here or from `tests.scenarios`, never from a conftest.
"""

from __future__ import annotations

from ..scenarios import DS_COURSES, T0, published

__all__ = ["DS_COURSES", "T0", "published"]
