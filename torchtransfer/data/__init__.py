"""Data stage: domains (built-in sets, image folders), seeded splits, batches, augmentation, safe archives.

``datasets`` holds the loaders; ``splits`` turns two domains into a ``DomainPair``; ``batches`` iterates
them; ``augment`` is the random affine; ``archives`` extracts tar files safely.
"""

from torchtransfer.data import archives, augment, batches, datasets, splits
from torchtransfer.data.datasets import Domain, as_domain, image_folder, load_domain
from torchtransfer.data.splits import DomainPair, build_pair

__all__ = ["Domain", "DomainPair", "archives", "as_domain", "augment", "batches", "build_pair", "datasets",
           "image_folder", "load_domain", "splits"]
