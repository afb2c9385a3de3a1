"""Scenario texts jsonschema has already passed, kept from set-up, so that a run need not load jsonschema again.

Loading jsonschema takes 50-100 ms, a fifth of a short command's whole ``kprof run``. Its verdict on a scenario
file is a function of the file's text, of the libraries that read and check it (PyYAML, jsonschema, referencing:
their installed versions) and of kprof's files that say what is checked (``scenario.py`` names them: the schema
and its own type rules). ``setup.sh`` checks the shipped scenarios in full once (``kprof validate --keep``) and
keeps, in the virtual environment, a digest of all of that for each file that passed. ``kprof run``, ``check``
and ``baseline save`` do not check a file whose digest is kept; any other text (an edited or new file, another
schema, another library version) is checked in full, and ``kprof validate`` always checks in full. Only a memo
file that this user (or root) owns and nobody else may write is read.
"""
from __future__ import annotations

import hashlib
import os
import stat
import sys
from importlib.util import find_spec
from pathlib import Path

from profiler.errors import KprofError
from profiler.outfiles import write_atomic

MEMO = Path(sys.prefix) / "kprof-validated"          # in the venv: that is where the checking libraries are
HEADER = "kprof: scenario texts that jsonschema passed, one sha256 a line (kprof validate --keep)"
# module → its distribution: what reads (yaml) and checks (jsonschema, referencing) a scenario's text
_LIBRARIES = (("yaml", "pyyaml"), ("jsonschema", "jsonschema"), ("referencing", "referencing"))
_contexts: dict[tuple, bytes] = {}


def _installed(module: str, dist: str) -> str:
    """The installed distribution's metadata directory name (it holds the version), e.g. jsonschema-4.26.0.dist-info."""
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(module)
    site = os.path.dirname(next(iter(spec.submodule_search_locations)))
    names = [n for n in os.listdir(site) if n.lower().startswith(dist + "-") and n[len(dist) + 1:][:1].isdigit()
             and n.endswith((".dist-info", ".egg-info"))]
    if len(names) != 1:
        raise LookupError(dist)
    return names[0]


def digest(raw: bytes, rules: tuple[Path, ...]) -> str | None:
    """The digest of a scenario file's text ``raw`` with all the check of it depends on (``rules``: kprof's files
    that say what is checked); None if that cannot be known."""
    try:
        context = _contexts.get(rules)
        if context is None:
            h = hashlib.sha256(HEADER.encode())
            for module, dist in _LIBRARIES:
                h.update(b"\0" + _installed(module, dist).encode())
            for path in rules:
                h.update(b"\0" + Path(path).read_bytes())
            context = _contexts[rules] = h.digest()
        return hashlib.sha256(context + raw).hexdigest()
    except (OSError, LookupError, ValueError):
        return None


def _kept() -> list[str]:
    """The digests in the memo; none if it is missing, not kprof's, or a file someone else may write."""
    try:
        fd = os.open(MEMO, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (os.geteuid(), 0) or st.st_mode & 0o022:
            return []
        lines = os.read(fd, 1 << 20).decode("ascii", "replace").splitlines()
    except OSError:
        return []
    finally:
        os.close(fd)
    return lines[1:] if lines[:1] == [HEADER] else []


def known(raw: bytes, rules: tuple[Path, ...]) -> bool:
    """Whether jsonschema passed this very text at set-up, with these libraries and these rules."""
    d = digest(raw, rules)
    return d is not None and d in _kept()


def keep(digests: list[str]) -> None:
    """Add these digests (of texts just checked in full, and passed) to the memo. Those of texts checked with
    other rules or libraries stay, harmless: no text has them now."""
    if None in digests:
        raise KprofError("kprof: the versions of PyYAML, jsonschema or referencing are not known: nothing kept")
    write_atomic(MEMO, "".join(line + "\n" for line in [HEADER, *dict.fromkeys(_kept() + digests)]))
