"""``release_free_memory``: returns freed heap pages where the C library can."""

from __future__ import annotations

import platform

from symbiosis.services._memory import release_free_memory


def test_release_free_memory_trims_on_glibc_and_is_a_no_op_elsewhere() -> None:
    released = release_free_memory()
    assert released is (platform.libc_ver()[0] == "glibc")
