"""A file's sha256, the one digest kprof records of files (pump tools, oref0's tree, a baseline's scenario)."""
from __future__ import annotations

import hashlib
import os

_DIGESTS: dict[tuple, str] = {}


def file_sha256(path) -> str:
    """The file's sha256, read once per process for as long as its device, inode, size, mtime and ctime stay the
    same (a run asks for its pump tools' digests when it checks the scenario and again for meta.json: a few MB of
    Go). OSError as from open()."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key not in _DIGESTS:
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]
