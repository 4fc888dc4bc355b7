"""regkit: tested, device-agnostic PyTorch implementations of regularizers, losses,
divergences and solvers from recent machine-learning papers.

Methods live in the family subpackages (``regkit.losses``, ...); ``regkit.data`` holds
offline datasets and label noise; ``regkit.workbook`` is the replication plumbing used by
the notebooks and never by the methods themselves.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("regkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
