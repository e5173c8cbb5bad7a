"""The fit's process keeps the memory it frees (kinms_core.memory)."""

import subprocess
import sys

import pytest

# Allocates and frees two 4 MB arrays (a cube's binned cloudlets and its scaled copy) 20 times and prints the page
# faults per round before and after keep_freed_memory, in a fresh process: the allocator's settings are per process.
CHURN = """
import resource, numpy as np
from kinms_core.memory import keep_freed_memory
def faults_per_round(size=2**19, rounds=20):
    ones = np.ones(size)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        counts = np.bincount(np.arange(size), minlength=size).astype(float)
        scaled = counts * ones
        del counts, scaled
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / rounds
before = faults_per_round()
print(before, keep_freed_memory(), faults_per_round())
"""


def test_freed_cube_sized_arrays_are_reused_without_page_faults():
    out = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, check=True).stdout.split()
    before, applied, after = float(out[0]), out[1] == "True", float(out[2])
    if not applied:
        pytest.skip("the C library is not glibc: the allocator keeps its defaults")
    if before < 500:
        pytest.skip(f"this C library already reuses the freed arrays ({before:.0f} faults per round)")
    pages = 3 * 2**19 * 8 / 4096  # the three arrays of a round
    assert after < 0.1 * pages < before
