"""Scenario texts jsonschema has already passed, kept from set-up, so that a run need not load jsonschema again.

Loading jsonschema takes 50-100 ms, a fifth of a short command's whole ``kprof run``. Its verdict on a scenario
file is a function of the file's text, of the libraries that read and check it (PyYAML, jsonschema, referencing:
their installed versions) and of kprof's own rules (``scenario.py`` gives them: the schema's text and its own
source, with the type rules, as loaded). ``setup.sh`` checks the shipped scenarios in full once (``kprof validate
--keep``) and keeps, in kprof's virtual environment, the digest of all of that ("the context") and one digest per
file that passed. ``kprof run``, ``check`` and ``baseline save`` do not check a text whose digest is kept under
the current context; any other text (an edited or new file, other rules, another library version) is checked in
full, and ``kprof validate`` always checks in full. Only a memo file that this user (or root) owns and nobody
else may write is read, and only a regular file (or none) is replaced.
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

# in kprof's virtual environment (setup.sh's .venv), where the checking libraries are; none outside one
MEMO = Path(sys.prefix) / "kprof-validated" if sys.prefix != sys.base_prefix else None
HEADER = "kprof: scenario texts that jsonschema passed (kprof validate --keep): the context's sha256, then one a text"
# module → its distribution: what reads (yaml) and checks (jsonschema, referencing) a scenario's text
_LIBRARIES = (("yaml", "pyyaml"), ("jsonschema", "jsonschema"), ("referencing", "referencing"))
_MAX = 1 << 20
_libraries: list[str] | None = None


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


def context(rules: tuple[bytes, ...]) -> str | None:
    """The digest of what a check depends on besides the text: the libraries' versions and kprof's ``rules``;
    None if the libraries' versions cannot be found."""
    global _libraries
    try:
        if _libraries is None:
            _libraries = [_installed(module, dist) for module, dist in _LIBRARIES]
    except (OSError, LookupError, ValueError):
        return None
    h = hashlib.sha256(HEADER.encode())
    for part in [*(n.encode() for n in _libraries), *rules]:
        h.update(b"%d\0" % len(part) + part)
    return h.hexdigest()


def _digest(ctx: str, raw: bytes) -> str:
    return hashlib.sha256(ctx.encode() + b"\0" + raw).hexdigest()


def _kept() -> list[str]:
    """The memo's lines after its header (the context, then the texts' digests); none if it is missing, not
    kprof's, or a file someone else may write."""
    if MEMO is None:
        return []
    try:
        fd = os.open(MEMO, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (os.geteuid(), 0) or st.st_mode & 0o022:
            return []
        lines = os.read(fd, _MAX).decode("ascii", "replace").splitlines()
    except OSError:
        return []
    finally:
        os.close(fd)
    return lines[1:] if lines[:1] == [HEADER] else []


def known(raw: bytes, rules: tuple[bytes, ...]) -> bool:
    """Whether jsonschema passed this very text at set-up, with these libraries and these rules."""
    ctx = context(rules)
    return ctx is not None and _digest(ctx, raw) in _kept()[1:]   # a digest under another context: no text has it


def keep(texts: list[bytes], rules: tuple[bytes, ...]) -> int:
    """Add these texts (just checked in full with ``rules``, and passed) to the memo; the digests kept under
    another context are dropped (no text has them now). Returns how many texts the memo holds."""
    if MEMO is None:
        raise KprofError("--keep: kprof is not running in a virtual environment (setup.sh's .venv), which is where "
                         "the verdicts are kept: nothing kept")
    ctx = context(rules)
    if ctx is None:
        raise KprofError("--keep: the installed versions of PyYAML, jsonschema or referencing cannot be found "
                         "(their .dist-info directories): nothing kept")
    try:
        st = os.lstat(MEMO)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise KprofError(f"{MEMO}: cannot look at it ({e.strerror}): nothing kept") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise KprofError(f"{MEMO}: not a regular file: not replaced, nothing kept")
    kept = _kept()
    old = kept[1:] if kept[:1] == [ctx] else []
    digests = list(dict.fromkeys(old + [_digest(ctx, raw) for raw in texts]))
    text = "".join(line + "\n" for line in [HEADER, ctx, *digests])
    if len(text) > _MAX:
        raise KprofError(f"{MEMO}: {len(digests)} texts would not fit in the {_MAX >> 20} MiB read back: "
                         "remove the file and keep fewer")
    write_atomic(MEMO, text)
    return len(digests)
