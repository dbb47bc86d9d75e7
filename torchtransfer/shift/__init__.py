"""Shift stage: how far apart two domains are.

``mmd`` holds the kernels, the MMD² estimators and the vectorised permutation test; ``a_distance`` the proxy
A-distance; ``report`` (imported on demand: it draws with matplotlib) the shift report and its figures.
"""

from torchtransfer.shift.a_distance import proxy_a_distance
from torchtransfer.shift.mmd import (
    ESTIMATORS,
    ArrayLike,
    Bandwidth,
    Estimator,
    MMDResult,
    as_matrix,
    bandwidths,
    class_conditional_mmd,
    gaussian_kernel,
    median_bandwidth,
    mmd2,
    mmd2_unbiased,
    permutation_masks,
    permutation_test,
    sq_dists,
)

__all__ = ["ESTIMATORS", "ArrayLike", "Bandwidth", "Estimator", "MMDResult", "as_matrix", "bandwidths",
           "class_conditional_mmd", "gaussian_kernel", "median_bandwidth", "mmd2", "mmd2_unbiased",
           "permutation_masks", "permutation_test", "proxy_a_distance", "sq_dists"]
