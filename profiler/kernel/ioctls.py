"""Decode an ioctl request: name, uapi header, and the kernel file that handles it for the fd's device class.

Data (loaded per ABI on first use): ``data/ioctls-64.tsv`` / ``data/ioctls-32.tsv`` (common requests),
``data/ioctls-arch.tsv`` (arch-specific ones, which replace same-named common ones), ``data/ioctls-special.tsv``
(size-parameterised and plain-number requests), ``data/ioctl-rules.tsv`` (handler file per device class),
``data/ioctl-class-defaults.tsv`` (ioctl entry point per device class), ``data/kernel-files.tsv``
(handler file -> subsystem) and ``data/ioctl-magic.tsv`` (Documentation/userspace-api/ioctl/ioctl-number.rst).

Matching order: exact request code, then (dir, type, nr) ignoring the size field (struct sizes differ
between ABIs), then the special rows. When several requests share a code, the device class behind the fd
decides; the note says what was chosen and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from profiler.kernel import KERNEL_VERSION, arches, read_rows
from profiler.kernel.devices import classify_path, is_device
from profiler.kernel.syscalls import normalize_arch

_DIRS = ("NONE", "WRITE", "READ", "READ+WRITE")
_SIZE_MASK = 0x3FFF << 16


@dataclass(frozen=True)
class IoctlInfo:
    request: int
    name: str | None
    header: str | None
    handler: str | None
    subsystem: str
    device_class: str
    dir: str
    type: int
    nr: int
    size: int
    note: str | None


# ----------------------------------------------------------------------------- data

@lru_cache(maxsize=None)
def _rules() -> dict[str, tuple]:
    out = {}
    for rid, classes, handler, note in read_rows("ioctl-rules.tsv"):
        out[rid] = (None if classes == "*" else frozenset(classes.split(",")), classes, handler, note)
    return out


@lru_cache(maxsize=None)
def _class_defaults() -> dict[str, tuple[str, str]]:
    return {c: (h, n) for c, h, n in read_rows("ioctl-class-defaults.tsv")}


@lru_cache(maxsize=None)
def _files() -> dict[str, str]:
    return {r[0]: r[1] for r in read_rows("kernel-files.tsv")}


@lru_cache(maxsize=None)
def _magic() -> tuple:
    return tuple((int(t, 16), int(lo, 16), int(hi, 16), inc) for t, lo, hi, inc, _ in read_rows("ioctl-magic.tsv"))


def _rule_list(ids: str) -> tuple:
    if not ids:
        return ()
    r = _rules()
    return tuple(r[i] for i in ids.split(","))


class _Tables:
    def __init__(self, arch: str):
        arch_rows = [r for r in read_rows("ioctls-arch.tsv") if r[0] == arches.ioctl_table(arch)]
        arch_names = {r[2] for r in arch_rows}
        self.exact: dict[int, list] = {}
        self.loose: dict[int, list] = {}
        rows = [r for r in read_rows(f"ioctls-{arches.ioctl_abi(arch)}.tsv") if r[1] not in arch_names]
        rows += [r[1:] for r in arch_rows]
        for req_s, name, header, ids in rows:
            req = int(req_s, 16)
            item = (req, name, header, ids)
            self.exact.setdefault(req, []).append(item)
            self.loose.setdefault(req & ~_SIZE_MASK, []).append(item)
        self.special = []
        for kind, d, t, lo, hi, mult, fixed, plain, name, param, header, ids in read_rows("ioctls-special.tsv"):
            self.special.append((kind, int(d), int(t, 16), int(lo, 16), int(hi, 16), int(mult), int(fixed),
                                 int(plain, 16) if plain else -1, name, param, header, ids))


@lru_cache(maxsize=None)
def _tables(arch: str) -> _Tables:
    return _Tables(arch)


# ----------------------------------------------------------------------------- matching

def _special_name(template: str, param: str, size: int, nr: int, nr_lo: int, mult: int) -> str:
    values = []
    for p in param.split(","):
        if p == "N":
            values.append(str(size // mult))
        elif p == "len":
            values.append(str(size))
        else:                      # an index added to the base nr (EVIOCGBIT's ev, EVIOCGABS's abs)
            values.append(f"0x{nr - nr_lo:02x}")
    return template.split("(", 1)[0] + "(" + ", ".join(values) + ")"


def _candidates(tables: _Tables, request: int, d: int, t: int, nr: int, size: int) -> list:
    """(quality, name, header, rule ids); quality 0 = exact, 1 = size differs."""
    out = []
    seen = set()
    for _, name, header, ids in tables.exact.get(request, ()):
        out.append((0, name, header, ids))
        seen.add((name, header))
    for _, name, header, ids in tables.loose.get(request & ~_SIZE_MASK, ()):
        if (name, header) not in seen:
            out.append((1, name, header, ids))
            seen.add((name, header))
    for kind, sd, st, lo, hi, mult, fixed, plain, name, param, header, ids in tables.special:
        if kind == "plain":
            if request == plain:
                out.append((0, name, header, ids))
            continue
        if sd != d or st != t or not lo <= nr <= hi:
            continue
        ok = (mult > 0 and size % mult == 0 and (size > 0 or param != "N")) or (fixed >= 0 and size == fixed)
        shown = _special_name(name, param, size, nr, lo, mult) if ok else name
        out.append((0 if ok else 1, shown, header, ids))
    return out


def _polarity(rules: tuple, dc: str) -> int:
    """0 = a rule applies to this device class, 1 = no evidence either way, 2 = rules exist for other classes."""
    if not rules:
        return 1
    for classes, _, _, _ in rules:
        if classes is None or dc in classes:
            return 0
    return 1 if dc == "unknown" else 2


def _registry_others(t: int, nr: int, header: str | None) -> list[str]:
    base = (header or "").rsplit("/", 1)[-1]
    out = []
    for mt, lo, hi, inc in _magic():
        if mt == t and lo <= nr <= hi:
            for h in inc.split(","):
                h = h.strip()
                if h and h.rsplit("/", 1)[-1] != base and h not in out:
                    out.append(h)
    return out


def _type_str(t: int) -> str:
    return f"'{chr(t)}'" if 0x21 <= t < 0x7F else f"0x{t:02x}"


def _subsystem(handler: str | None) -> str:
    if handler is None:
        return "unknown"
    return _files().get(handler, "unknown")


@lru_cache(maxsize=8192)
def _decode(request: int, fd_path: str | None, arch: str) -> IoctlInfo:
    dc = classify_path(fd_path)
    d, size, t, nr = request >> 30, (request >> 16) & 0x3FFF, (request >> 8) & 0xFF, request & 0xFF
    fields = dict(request=request, device_class=dc, dir=_DIRS[d], type=t, nr=nr, size=size)
    where = f"{fd_path} ({dc})" if fd_path else "unknown"
    cands = _candidates(_tables(arch), request, d, t, nr, size)

    if not cands:
        note = f"request 0x{request:08x} is not in the Linux {KERNEL_VERSION} uapi ioctl tables"
        reg = _registry_others(t, nr, None)
        if reg:
            note += f"; type {_type_str(t)} nr 0x{nr:02x} is registered for {', '.join(reg)}"
        handler = None
        if dc in _class_defaults():
            handler, hnote = _class_defaults()[dc]
            note += f"; every ioctl on a {dc} fd enters {handler} ({hnote})"
        return IoctlInfo(name=None, header=None, handler=handler, subsystem=_subsystem(handler), note=note, **fields)

    scored = []
    device = is_device(dc)
    for quality, name, header, ids in cands:
        rules = _rule_list(ids)
        pol = _polarity(rules, dc)
        # on a non-device fd a request without facts is no more plausible than one meant for another class
        rank = 1 if pol == 2 and not device else pol
        scored.append(((rank, quality, 0 if rules else 1, name, header), name, header, rules, pol))
    scored.sort(key=lambda s: s[0])
    (_, quality, _, _, _), name, header, rules, pol = scored[0]
    notes = []
    if quality == 1:
        notes.append("matched on dir, type and nr; the size field differs from the uapi definition")

    handler = None
    by_device = False
    if pol == 0:
        rule = next(r for r in rules if r[0] is None or dc in r[0])
        handler = rule[2]
        by_device = rule[0] is not None
        if rule[3]:
            notes.append(rule[3])
    elif pol == 1 and rules:           # fd type unknown, the request's own rules decide if they agree
        handlers = sorted({r[2] for r in rules})
        if len(handlers) == 1:
            handler = handlers[0]
            notes.append(f"fd type unknown; {name} is handled by {handler} on {rules[0][1]} fds")
        else:
            notes.append("fd type unknown; " + "; ".join(f"{r[2]} on {r[1]} fds" for r in rules))
    else:
        if rules:
            notes.append(f"{name} is a request for {', '.join(sorted({r[1] for r in rules}))} fds, "
                         f"but the fd is {where}")
        else:
            notes.append(f"kprof has no handler fact for {name} ({header})")
        if dc in _class_defaults():
            handler, hnote = _class_defaults()[dc]
            notes.append(f"every ioctl on a {dc} fd enters {handler} ({hnote})")
        elif dc != "unknown":
            handler = "fs/ioctl.c"
            notes.append(f"do_vfs_ioctl() in fs/ioctl.c passes it to the {dc} fd's own ioctl handler, if it has one")

    others = [s for s in scored[1:] if s[1] != name]
    if others:
        alts = ", ".join(f"{s[1]} ({s[2]})" for s in others[:4]) + (" ..." if len(others) > 4 else "")
        why = f"because the fd is {where}" if by_device else \
            "by match quality (the fd does not decide)"
        notes.append(f"0x{request:08x} also matches {alts}; chose {name} {why}")
    if by_device and is_device(dc):
        reg = _registry_others(t, nr, header)
        if reg:
            notes.append(f"type {_type_str(t)} nr 0x{nr:02x} is also registered for {', '.join(reg)}; "
                         f"the {dc} device decides")
    return IoctlInfo(name=name, header=header, handler=handler, subsystem=_subsystem(handler),
                     note="; ".join(notes) or None, **fields)


def decode_ioctl(request: int, fd_path: str | None = None, arch: str = "x86_64") -> IoctlInfo:
    """Decode an ioctl request code for an fd (path as strace -yy prints it) on an arch; never raises
    for an unknown request."""
    return _decode(int(request) & 0xFFFFFFFF, fd_path or None, normalize_arch(arch))


# ----------------------------------------------------------------------------- names -> codes (strace output)

_IOC_DIR_FLAGS = {"_IOC_NONE": 0, "_IOC_WRITE": 1, "_IOC_READ": 2}


def _int(text: str) -> int:
    text = text.strip()
    if len(text) == 3 and text[0] == text[2] == "'":
        return ord(text[1])
    return int(text, 0)


@lru_cache(maxsize=None)
def _names(arch: str) -> dict[str, int]:
    out: dict[str, int] = {}
    t = _tables(arch)
    for items in t.exact.values():
        for req, name, _, _ in items:
            out.setdefault(name, req)
    for kind, _, _, _, _, _, _, plain, name, _, _, _ in t.special:
        if kind == "plain":
            out.setdefault(name, plain)
    return out


@lru_cache(maxsize=4096)
def _code(name: str, arch: str) -> int | None:
    name = name.strip()
    if " or " in name:                                     # strace: "SNDCTL_TMR_START or TCSETS"
        for part in name.split(" or "):
            code = _code(part, arch)
            if code is not None:
                return code
        return None
    if name in _names(arch):
        return _names(arch)[name]
    if name.startswith("_IOC(") and name.endswith(")"):     # strace: _IOC(_IOC_READ|_IOC_WRITE, 0x48, 0x7, 0x40)
        try:
            d_s, t_s, nr_s, size_s = (x.strip() for x in name[5:-1].split(","))
            d = 0
            for flag in d_s.split("|"):
                d |= _IOC_DIR_FLAGS[flag.strip()]
            return (d << 30) | (_int(size_s) << 16) | (_int(t_s) << 8) | _int(nr_s)
        except (KeyError, ValueError):
            return None
    if "(" in name and name.endswith(")"):                  # SPI_IOC_MESSAGE(1), EVIOCGBIT(0x1, 96), ...
        base, args = name[:-1].split("(", 1)
        try:
            values = [_int(a) for a in args.split(",")]
        except ValueError:
            return None
        for kind, d, t, lo, hi, mult, fixed, _, tname, param, _, _ in _tables(arch).special:
            if kind != "param" or tname.split("(", 1)[0] != base:
                continue
            params = param.split(",")
            if len(params) != len(values):
                return None
            nr, size = lo, fixed if fixed >= 0 else 0
            for p, v in zip(params, values):
                if p == "N":
                    # strace prints the size field in bytes (SPI_IOC_MESSAGE(1) is "SPI_IOC_MESSAGE(32)");
                    # a count that is no whole number of records is the kernel macro's spelling
                    size = v if mult and v % mult == 0 else v * mult
                elif p == "len":
                    size = v
                else:
                    nr = lo + v
            if not lo <= nr <= hi or not 0 <= size < 1 << 14:
                return None
            return (d << 30) | (size << 16) | (t << 8) | nr
        return None
    try:
        return _int(name) & 0xFFFFFFFF
    except ValueError:
        return None


def request_from_arg(text: str, arch: str = "x86_64") -> int | None:
    """An ioctl request as strace prints the argument: ``0x5401`` (-X raw), ``TCGETS`` (default),
    ``0x5401 /* TCGETS */`` (-X verbose), ``SPI_IOC_MESSAGE(32)``; None when unknown. 32 bits, as the kernel reads it."""
    text = text.strip()
    if text.endswith("*/"):
        text = text.split("/*", 1)[0]
    code = ioctl_code(text, arch)
    return None if code is None else code & 0xFFFFFFFF


def ioctl_code(name: str, arch: str = "x86_64") -> int | None:
    """The request code for a name as strace prints it ("TCGETS", "SPI_IOC_MESSAGE(1)",
    "SNDCTL_TMR_START or TCSETS", "_IOC(_IOC_WRITE, 0x6b, 0, 0x20)", "0x5401"); None if unknown."""
    return _code(name, normalize_arch(arch))
