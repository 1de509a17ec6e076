"""annoy-adapters: Annoy's approximate nearest neighbours in vectorized NumPy, with adapters.

>>> from annoy_adapters import AnnoyIndex, load
"""

from __future__ import annotations

from annoy_adapters.core import METRICS, AnnoyIndex, IndexFileError, RowError, load

__all__ = ["METRICS", "AnnoyIndex", "IndexFileError", "RowError", "__version__", "load"]
__version__ = "0.1.0"
