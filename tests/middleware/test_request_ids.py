"""Request ids are unique, and sort in the order they were made (cheap to index)."""

from __future__ import annotations

import re
import subprocess
import sys

from symbiosis.middleware.request_id import new_request_id


def test_ids_are_unique_and_ascending() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids)


_FORK = """
import os
from symbiosis.middleware.request_id import new_request_id
new_request_id()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, " ".join(new_request_id() for _ in range(3)).encode())
    os._exit(0)
os.close(write)
os.waitpid(pid, 0)
print(os.read(read, 4096).decode())
print(" ".join(new_request_id() for _ in range(3)))
"""


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    # In a fresh, single-threaded interpreter: forking the test runner could deadlock.
    done = subprocess.run(
        [sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=60, check=True
    )
    child, parent = (line.split() for line in done.stdout.splitlines())
    assert len(child) == len(parent) == 3
    assert not set(child) & set(parent)
    assert child[0][:20] != parent[0][:20]  # its own random part
