"""The nightly bulk upload.

``fhs_bulk.upload`` is both this package and the library's upload function: the package is callable
(it calls ``fhs_bulk.upload.run.upload``), so ``fhs_bulk.upload(session, sheet)`` and ``import
fhs_bulk.upload.run`` both work, in any order.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class _CallablePackage(ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from fhs_bulk.upload.run import upload

        return upload(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
