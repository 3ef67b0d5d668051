"""Each dataset built once at start-up: BasicSR's ``train.py`` and ``test.py`` take the sets the run checks built.

The run checks (:mod:`slkd_basicsr.checks.run`) build the train set and every validation or test set before
anything is made; :func:`install` replaces ``build_dataset`` of ``basicsr.train`` and ``basicsr.test`` (each imported
it by name from ``basicsr.data``) by :func:`slkd_basicsr.data.built_datasets.build_dataset`, which hands over the
set built for equal options (with BasicSR's log line) and builds only the others.
"""
from ..data import built_datasets


def install() -> None:
    """Replace ``build_dataset`` of ``basicsr.train`` and ``basicsr.test``."""
    import basicsr.test
    import basicsr.train

    basicsr.train.build_dataset = built_datasets.build_dataset
    basicsr.test.build_dataset = built_datasets.build_dataset
