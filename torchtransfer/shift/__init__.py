"""Shift stage: how far apart two domains are.

``mmd`` holds the kernels, the MMD² estimators and the vectorised permutation engine (the median test);
``aggregated`` the aggregated multi-bandwidth test (MMDAgg-style); ``per_class`` the per-class MMD²;
``a_distance`` the proxy A-distance; ``report`` (imported on demand: it draws with matplotlib) the shift
report and its figures.
"""

from torchtransfer.shift.a_distance import proxy_a_distance
from torchtransfer.shift.aggregated import (
    AGGREGATED_SCALES,
    TESTS,
    AggregatedResult,
    ShiftTest,
    aggregated_test,
    two_sample_test,
)
from torchtransfer.shift.mmd import (
    ESTIMATORS,
    ArrayLike,
    Bandwidth,
    Estimator,
    MMDResult,
    as_matrix,
    bandwidths,
    gaussian_kernel,
    median_bandwidth,
    mmd2,
    mmd2_unbiased,
    permutation_masks,
    permutation_test,
    permuted_statistics,
    sq_dists,
)
from torchtransfer.shift.per_class import class_conditional_mmd

__all__ = ["AGGREGATED_SCALES", "ESTIMATORS", "TESTS", "AggregatedResult", "ArrayLike", "Bandwidth", "Estimator",
           "MMDResult", "ShiftTest", "aggregated_test", "as_matrix", "bandwidths", "class_conditional_mmd",
           "gaussian_kernel", "median_bandwidth", "mmd2", "mmd2_unbiased", "permutation_masks", "permutation_test",
           "permuted_statistics", "proxy_a_distance", "sq_dists", "two_sample_test"]
