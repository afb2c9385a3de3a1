#!/usr/bin/env python3
"""Generate kprof's kernel lookup tables (profiler/kernel/data/*.tsv).

Inputs
  * the PyPI package ``system-calls`` (syscall number <-> name per arch),
  * the Linux 6.19.9 reference files in --reference DIR (default ../shared/reference/kernel
    relative to the project root): syscall-tables/*.tbl, syscall-definitions.tsv, MAINTAINERS,
    ioctl-number.rst, ioctls-64bit.tsv, ioctls-32bit.tsv, ioctls-arch-*.tsv, ioctls-special.tsv,
  * the hand-curated facts in tools/kernel_facts/*.tsv.

Output: small TSV files, each starting with "#" lines that say how it was made.
The output is deterministic: running the generator again gives byte-identical files.

    .venv/bin/python tools/gen_kernel_data.py [--reference DIR] [--out DIR]

Longer than ~600 lines because each table family (syscalls, devices, ioctls, Kconfig) is one straight reading of
its reference files with the checks beside it; the helpers (kernel_facts_io.py) and the ABI tables (arches,
address families, syscall argument classes: kernel_facts_abi.py) live in their own modules.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import re
import sys
from collections import defaultdict
from pathlib import Path

from kernel_facts_abi import arches, gen_address_families, gen_arches, gen_syscall_args
from kernel_facts_io import FACTS, KERNEL_VERSION, PROJECT, GenError, Sources, read_tsv, write_tsv

DEFAULT_REFERENCE = PROJECT.parent / "shared" / "reference" / "kernel"
DEFAULT_OUT = PROJECT / "profiler" / "kernel" / "data"

# Per-arch settings of this generator only (the arches' kernel facts are tools/kernel_facts/arches.tsv):
# kprof arch -> (system_calls table module, file-name infix to avoid when ranking definitions)
PKG_TABLE = {
    "x86_64": ("x86_64", "_32."),
    "i386": ("i386", "_64."),
    "arm": ("arm", None),
    "aarch64": ("arm64", None),
    "riscv64": ("riscv64", None),
    "arm64-compat": ("arm", None),
}
# Definitions that only exist for other configurations; used only when nothing else defines the call.
DEPRIORITISED = ("kernel/sys_ni.c", "kernel/time/posix-stubs.c", "mm/nommu.c")
EXCLUDED = ("arch/x86/um/",)
IOCTL_DIRS = {"NONE": 0, "WRITE": 1, "READ": 2, "READ+WRITE": 3}


# ----------------------------------------------------------------------------- MAINTAINERS

class Maintainers:
    def __init__(self, text: str):
        self.sections: list[tuple[str, list[str], list[str]]] = []
        self._cache: dict[str, str | None] = {}
        block: list[str] = []
        for line in text.splitlines() + [""]:
            if line.strip():
                block.append(line)
                continue
            if len(block) >= 2 and not re.match(r"^[A-Z]:\s", block[0]) and re.match(r"^[A-Z]:\s", block[1]):
                files = [ln[2:].strip() for ln in block[1:] if ln.startswith("F:")]
                excl = [ln[2:].strip() for ln in block[1:] if ln.startswith("X:")]
                self.sections.append((block[0].strip(), files, excl))
            block = []
        if not self.sections:
            raise GenError("MAINTAINERS: no sections found")

    _pat_cache: dict[str, tuple] = {}

    @classmethod
    def _compile(cls, pattern: str) -> tuple:
        c = cls._pat_cache.get(pattern)
        if c is None:
            wild = any(ch in pattern for ch in "*?")
            is_dir = pattern.endswith("/") or (not wild and "." not in pattern.rsplit("/", 1)[-1])
            literal = re.split(r"[*?]", pattern, maxsplit=1)[0]
            rx = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
            if is_dir and not pattern.endswith("/"):
                rx += "/"
            c = cls._pat_cache[pattern] = (wild, is_dir, literal, re.compile(rx))
        return c

    @classmethod
    def _match(cls, pattern: str, path: str) -> tuple | None:
        """get_maintainer.pl semantics: 'dir/' matches everything below; other patterns match as a
        prefix regex with '*' and '?' wildcards and the same number of '/'. A wildcard-free pattern
        whose last component has no '.' is taken as a directory. Returns a specificity key or None."""
        wild, is_dir, literal, rx = cls._compile(pattern)
        if not path.startswith(literal):
            return None
        if not wild and pattern == path:
            return (2, pattern.count("/"), len(pattern))
        if is_dir:
            if rx.match(path):
                return (0, pattern.rstrip("/").count("/") + 1, len(pattern.replace("*", "")))
            return None
        if pattern.count("/") == path.count("/") and rx.match(path):
            return (1, pattern.count("/"), len(pattern.replace("*", "").replace("?", "")))
        return None

    def lookup(self, path: str) -> str | None:
        if path not in self._cache:
            self._cache[path] = self._lookup(path)
        return self._cache[path]

    def _index(self) -> dict[str, list[int]]:
        """Section indexes bucketed by the first path component of their F: patterns."""
        if not hasattr(self, "_buckets"):
            self._buckets: dict[str, list[int]] = defaultdict(list)
            for i, (_, files, _) in enumerate(self.sections):
                for f in files:
                    first = f.split("/", 1)[0]
                    key = "*" if any(ch in first for ch in "*?") or "/" not in f and not f.endswith("/") else first
                    if not self._buckets[key] or self._buckets[key][-1] != i:
                        self._buckets[key].append(i)
        return self._buckets

    def _lookup(self, path: str) -> str | None:
        hits = []
        idx = self._index()
        cand = sorted(set(idx.get(path.split("/", 1)[0], [])) | set(idx.get("*", [])))
        for i in cand:
            title, files, excl = self.sections[i]
            if any(self._match(x, path) for x in excl):
                continue
            best = None
            for f in files:
                k = self._match(f, path)
                if k and (best is None or k > best):
                    best = k
            if best:
                hits.append((best, title))
        if not hits:
            return None
        hits.sort(key=lambda h: (tuple(-x for x in h[0]), h[1]))
        titles = [t for _, t in hits if t != "THE REST"] or ["THE REST"]
        return "; ".join(titles)


# ----------------------------------------------------------------------------- taxonomy

class Taxonomy:
    def __init__(self):
        self.subsystems = {r[0]: (r[1], r[2]) for r in read_tsv(FACTS / "subsystems.tsv")}
        self.prefixes = [(r[0], r[1]) for r in read_tsv(FACTS / "subsystem-paths.tsv")]
        self.overrides: dict[tuple[str, str], str] = {}
        self.wrappers: dict[str, str] = {}
        for r in read_tsv(FACTS / "subsystem-overrides.tsv"):
            if r[0] == "override":
                self.overrides[(r[1], r[2])] = r[3]
            elif r[0] == "wrapper":
                self.wrappers[r[1]] = r[2]
            else:
                raise GenError(f"subsystem-overrides.tsv: unknown kind {r[0]!r}")
        for sid in [s for _, s in self.prefixes] + list(self.overrides.values()):
            if sid not in self.subsystems:
                raise GenError(f"taxonomy: {sid!r} is not an id in subsystems.tsv")
        self.elisa_syscalls = {r[0]: r[1] for r in read_tsv(FACTS / "elisa-syscalls.tsv")}

    def by_path(self, path: str) -> str | None:
        best = None
        for prefix, sid in self.prefixes:
            ok = path.startswith(prefix) if prefix.endswith("/") else (path == prefix or path.startswith(prefix + "/"))
            if ok and (best is None or len(prefix) > len(best[0])):
                best = (prefix, sid)
        return best[1] if best else None

    def elisa(self, subsystem: str, syscall: str | None) -> str:
        if syscall and syscall in self.elisa_syscalls:
            return self.elisa_syscalls[syscall]
        return self.subsystems[subsystem][0] if subsystem in self.subsystems else "Unknown"


# ----------------------------------------------------------------------------- syscalls

class Definitions:
    def __init__(self, path: Path):
        self.by_name: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        for r in read_tsv(path):
            f, line, macro, name = r[0], int(r[1]), r[2], r[3]
            self.by_name[name].append((f, line, macro))

    def generic_subsystem_file(self, name: str) -> str | None:
        """The non-arch file defining SYSCALL_DEFINE <name>, for arch wrappers."""
        files = sorted({f for f, _, m in self.by_name.get(name, ())
                        if not f.startswith("arch/") and m.startswith("SYSCALL_DEFINE") and f not in DEPRIORITISED})
        return files[0] if len(files) == 1 else None


def read_tbl(path: Path, abis: tuple[str, ...], col: int) -> list[tuple[int, str, str | None]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if f[1] not in abis:
            continue
        entry = None
        if len(f) > 3:
            entry = f[3]
            if col == 4 and len(f) > 4:
                entry = f[4]
        rows.append((int(f[0]), f[2], entry))
    return rows


def load_entry_facts():
    facts: dict[str, dict] = defaultdict(lambda: {"asm": {}, "shim": {}, "c": {}, "private": {}, "missing": {}, "stub": {},
                                                   "note": {}})
    for r in read_tsv(FACTS / "syscall-entries.tsv"):
        r = r + [""] * (7 - len(r))
        arch, kind, key, file, target, sub, note = r[:7]
        if kind not in ("asm", "shim", "c", "private", "missing", "stub", "note"):
            raise GenError(f"syscall-entries.tsv: unknown kind {kind!r}")
        facts[arch][kind][key] = {"file": file or None, "target": target or None,
                                  "subsystem": sub or None, "note": note or None}
    return facts


class SyscallResolver:
    def __init__(self, arch: str, defs: Definitions, tax: Taxonomy, maint: Maintainers, facts):
        self.arch = arch
        self.defs = defs
        self.tax = tax
        self.maint = maint
        self.facts = facts[arch]
        self.archdir, self.avoid = f"arch/{arches()[arch]['srcarch']}/", PKG_TABLE[arch][1]

    def _candidates(self, name: str, compat: bool):
        out = []
        for f, line, macro in self.defs.by_name.get(name, ()):
            if any(f.startswith(x) for x in EXCLUDED):
                continue
            if f.startswith("arch/") and not f.startswith(self.archdir):
                continue
            if compat:
                if macro.startswith("COMPAT_SYSCALL_DEFINE"):
                    mrank = 0
                elif macro.startswith("SYSCALL32_DEFINE"):
                    mrank = 1
                else:
                    continue
            else:
                if macro.startswith("SYSCALL_DEFINE"):
                    mrank = 0
                elif macro.startswith("SYSCALL32_DEFINE"):
                    mrank = 1
                else:
                    continue
            rank = (
                2 if f in DEPRIORITISED else 0 if f.startswith(self.archdir) else 1,
                1 if (self.avoid and self.avoid in f) else 0,
                mrank,
                f,
                line,
            )
            out.append((rank, f, line, macro))
        out.sort()
        return out

    def subsystem_for(self, f: str, defname: str | None) -> str | None:
        if defname and (f, defname) in self.tax.overrides:
            return self.tax.overrides[(f, defname)]
        if defname and f in self.tax.wrappers and defname.startswith(self.tax.wrappers[f]):
            g = self.defs.generic_subsystem_file(defname[len(self.tax.wrappers[f]):])
            if g:
                return self.tax.by_path(g)
        return self.tax.by_path(f)

    def resolve(self, name: str, entry: str | None, tbl: str, in_tbl: bool) -> dict:
        res = {"entry": entry, "file": None, "line": None, "macro": None, "subsystem": "unknown", "notes": []}
        notes = res["notes"]
        if name in self.facts["note"]:
            notes.append(self.facts["note"][name]["note"])
        if name in self.facts["private"] or name in self.facts["missing"]:
            kind = "private" if name in self.facts["private"] else "missing"
            fact = self.facts[kind][name]
            res["file"] = fact["file"] if kind == "private" else None
            res["subsystem"] = fact["subsystem"] or "unknown"
            notes.append(fact["note"])
            return res
        if not in_tbl:
            notes.append(f"not in Linux {KERNEL_VERSION} {tbl} (number from system-calls {sys_calls_version()}, "
                         "added in a later kernel)")
            return res
        if entry is None:
            notes.append(f"not implemented on this ABI: no entry point in {tbl} (the kernel returns -ENOSYS)")
            return res
        e = entry
        for suffix, fact in self.facts["shim"].items():
            if e.endswith(suffix):
                e = e[: -len(suffix)]
                notes.append(fact["note"].format(entry=entry))
        if e in self.facts["asm"]:
            fact = self.facts["asm"][e]
            notes.append(fact["note"])
            e = fact["target"]
        if e in self.facts["stub"]:
            fact = self.facts["stub"][e]
            res["file"] = fact["file"]
            notes.append(fact["note"])
            return res
        if e in self.facts["c"]:
            fact = self.facts["c"][e]
            res.update(file=fact["file"], subsystem=fact["subsystem"] or self.tax.by_path(fact["file"]))
            notes.append(fact["note"])
            return res
        if e == "sys_ni_syscall":
            notes.append("not implemented on this ABI: the .tbl entry is sys_ni_syscall (returns -ENOSYS)")
            cands = self._candidates("ni_syscall", False)
            if cands:
                _, f, line, macro = cands[0]
                res.update(file=f, line=line, macro=macro)
            else:
                res["file"] = "kernel/sys_ni.c"   # asmlinkage long sys_ni_syscall(void), no SYSCALL_DEFINE
            return res
        if e.startswith("compat_sys_"):
            defname, compat = e[len("compat_sys_"):], True
        elif e.startswith("sys_"):
            defname, compat = e[len("sys_"):], False
        else:
            notes.append(f"entry point {entry} has no SYSCALL_DEFINE in syscall-definitions.tsv")
            return res
        cands = self._candidates(defname, compat)
        if not cands:
            notes.append(f"not implemented on this ABI: no {'COMPAT_' if compat else ''}SYSCALL_DEFINE({defname}) "
                         f"for this arch in Linux {KERNEL_VERSION}, so {entry} is the weak COND_SYSCALL stub "
                         "of kernel/sys_ni.c (returns -ENOSYS)")
            res["file"] = "kernel/sys_ni.c"
            return res
        _, f, line, macro = cands[0]
        res.update(file=f, line=line, macro=macro)
        same = [c for c in cands[1:] if c[1] == f and c[0][:3] == cands[0][0][:3]]
        if same:
            notes.append(f"{f} has {len(same) + 1} definitions for different kernel configurations "
                         f"(lines {', '.join(str(c[2]) for c in [cands[0]] + same)}); the first is shown")
        if f in DEPRIORITISED:
            notes.append(f"only defined in {f} (a stub for kernels built without the feature)")
        sub = self.subsystem_for(f, defname)
        if sub is None:
            raise GenError(f"{self.arch} {name}: no taxonomy prefix covers {f}")
        res["subsystem"] = sub
        return res


_SC_VERSION = None


def sys_calls_version() -> str:
    global _SC_VERSION
    if _SC_VERSION is None:
        _SC_VERSION = importlib.metadata.version("system-calls")
    return _SC_VERSION


def gen_syscalls(src: Sources, out: Path, tax: Taxonomy, maint: Maintainers) -> dict[str, list[list]]:
    """Writes syscalls-<arch>.tsv and syscall-aliases.tsv; returns arch -> its rows (for the kconfig tables)."""
    defs = Definitions(src.ref("syscall-definitions.tsv"))
    all_rows: dict[str, list[list]] = {}
    facts = load_entry_facts()
    fact_aliases = read_tsv(FACTS / "syscall-aliases.tsv")
    alias_rows = []
    subcall_rows = []
    for arch, a in arches().items():
        pkgmod, tbl, abis = PKG_TABLE[arch][0], a["syscall_table"], tuple(a["table_abis"].split(","))
        col = 3 if a["runs_on"] == "-" else 4     # a compat ABI enters through the .tbl's compat entry column
        table = getattr(importlib.import_module(f"system_calls.tables.{pkgmod}"), f"syscalls_{pkgmod}")
        tbl_rows = read_tbl(src.ref(f"syscall-tables/{tbl}"), abis, col)
        by_num_tbl = {}
        by_name_tbl = {}
        for num, name, entry in tbl_rows:
            if num in by_num_tbl or name in by_name_tbl:
                raise GenError(f"{tbl}: duplicate number or name for {arch}: {num} {name}")
            by_num_tbl[num] = (name, entry)
            by_name_tbl[name] = num
        merged: dict[str, tuple[int, str | None, bool]] = {}
        pkg_aliases = {}
        for name, num in table.items():
            if name in by_name_tbl:
                if by_name_tbl[name] != num:
                    raise GenError(f"{arch}: system-calls says {name}={num}, {tbl} says {by_name_tbl[name]}")
            elif num in by_num_tbl:
                pkg_aliases[name] = by_num_tbl[num][0]   # same number, other name: the kernel's name wins
            else:
                merged[name] = (num, None, False)        # only in the package (newer kernel, ARM private)
        for num, (name, entry) in by_num_tbl.items():
            merged[name] = (num, entry, True)
        resolver = SyscallResolver(arch, defs, tax, maint, facts)
        rows = []
        for name, (num, entry, in_tbl) in merged.items():
            r = resolver.resolve(name, entry, tbl, in_tbl)
            if not in_tbl and name not in table:
                raise GenError("internal: row without a source")
            sub = r["subsystem"]
            if sub == "unknown" and not r["notes"]:
                raise GenError(f"{arch} {name}: subsystem unknown without a reason")
            rows.append([num, name, r["entry"], r["file"], r["line"], r["macro"], sub,
                         tax.elisa(sub, name), maint.lookup(r["file"]) if r["file"] else None,
                         "; ".join(r["notes"]) or None])
        rows.sort(key=lambda x: (x[0], x[1]))
        all_rows[arch] = rows
        header = src.describe([f"syscall-tables/{tbl}", "syscall-definitions.tsv", "MAINTAINERS"],
                              ["subsystems.tsv", "subsystem-paths.tsv", "subsystem-overrides.tsv",
                               "elisa-syscalls.tsv", "syscall-entries.tsv"], pkg=True)
        header.insert(2, f"Syscalls of {arch} ({', '.join(abis)} rows of {tbl}; names and numbers from "
                         f"system-calls table '{pkgmod}', plus .tbl rows the package omits; the .tbl name wins "
                         "where both name one number). Defining SYSCALL_DEFINE location resolved through the "
                         "entry-point column.")
        write_tsv(out, f"syscalls-{arch}.tsv", header,
                  ["number", "name", "entry", "file", "line", "macro", "subsystem", "elisa", "maintainers", "note"],
                  rows)
        names = set(merged)
        for alias, canon in sorted(pkg_aliases.items()):
            alias_rows.append([arch, alias, canon, f"system-calls {sys_calls_version()} name"])
        for fa in fact_aliases:
            a_arch, alias, canon = fa[0], fa[1], fa[2]
            if a_arch not in (arch, "*"):
                continue
            if canon not in names:
                raise GenError(f"syscall-aliases.tsv: {canon} is not a {arch} syscall")
            if alias in names or alias in pkg_aliases:
                continue
            alias_rows.append([arch, alias, canon, fa[3] if len(fa) > 3 and fa[3] else "strace name"])
        for mux, call, sub, handler in read_tsv(FACTS / "syscall-subcalls.tsv"):
            if mux in names and sub not in names and sub not in pkg_aliases:
                subcall_rows.append([arch, sub, mux, int(call), handler])
    subcall_rows.sort()
    header = src.describe([], ["syscall-subcalls.tsv"])
    header.insert(2, "Calls with no syscall of their own on an arch, reached through its multiplexer "
                     "(socketcall, ipc): arch, name as strace prints it, multiplexer, call number, handler's file.")
    write_tsv(out, "syscall-subcalls.tsv", header, ["arch", "name", "multiplexer", "call", "handler_file"],
              subcall_rows)
    alias_rows = sorted({tuple(r) for r in alias_rows})
    header = src.describe([], ["syscall-aliases.tsv"], pkg=True)
    header.insert(2, "Other spellings of syscall names per arch -> the Linux .tbl name used in syscalls-<arch>.tsv.")
    write_tsv(out, "syscall-aliases.tsv", header, ["arch", "alias", "canonical", "source"], alias_rows)
    return all_rows


def gen_subsystems(src: Sources, out: Path, tax: Taxonomy) -> None:
    header = src.describe([], ["subsystems.tsv"])
    header.insert(2, "kprof subsystem taxonomy: id, default ELISA category, description.")
    write_tsv(out, "subsystems.tsv", header, ["id", "elisa", "description"],
              [[k, v[0], v[1]] for k, v in tax.subsystems.items()])
    header = src.describe([], ["elisa-syscalls.tsv"])
    header.insert(2, "Per-syscall ELISA categories that differ from the subsystem default.")
    write_tsv(out, "elisa-syscalls.tsv", header, ["syscall", "elisa"],
              sorted([k, v] for k, v in tax.elisa_syscalls.items()))


# ----------------------------------------------------------------------------- devices

def gen_devices(src: Sources, out: Path) -> tuple[dict, dict]:
    classes = read_tsv(FACTS / "device-classes.tsv")
    groups: dict[str, list[str]] = defaultdict(list)
    known = []
    for c in classes:
        c = c + [""] * (4 - len(c))
        known.append(c[0])
        for g in filter(None, c[2].split(",")):
            groups[g].append(c[0])
    paths = read_tsv(FACTS / "device-paths.tsv")
    for rx, cls in paths:
        re.compile(rx)
        if cls not in known:
            raise GenError(f"device-paths.tsv: unknown class {cls}")
    majors = read_tsv(FACTS / "device-majors.tsv")
    for m in majors:
        if m[4] not in known:
            raise GenError(f"device-majors.tsv: unknown class {m[4]}")
    header = src.describe([], ["device-classes.tsv", "device-paths.tsv", "device-majors.tsv"])
    write_tsv(out, "device-classes.tsv", header + ["Device classes: id, is_device, ioctl-rule groups, meaning."],
              ["class", "is_device", "groups", "description"], [c + [""] * (4 - len(c)) for c in classes])
    write_tsv(out, "device-paths.tsv", header + ["Path regex -> device class; first match wins."],
              ["regex", "class"], paths)
    write_tsv(out, "device-majors.tsv", header + ["strace -yy <char|block M:N> fallback -> device class."],
              ["type", "major", "minor_lo", "minor_hi", "class"], majors)
    return dict(groups), {c: True for c in known}


# ----------------------------------------------------------------------------- ioctls

def parse_ioctl_number_rst(text: str) -> list[list]:
    """(type, nr_lo, nr_hi, include file(s), comment) rows of the magic-number table."""
    lines = text.splitlines()
    seps = [i for i, ln in enumerate(lines) if re.match(r"^=+\s+=+\s+=+\s+=+\s*$", ln)]
    if len(seps) < 3:
        raise GenError("ioctl-number.rst: table not found")
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[seps[0]])]
    body = lines[seps[1] + 1: seps[2]]
    rows: list[list] = []

    def cut(ln, k):
        a = spans[k][0]
        b = spans[k + 1][0] if k + 1 < len(spans) else len(ln)
        return ln[a:b].strip() if k + 1 < len(spans) else ln[a:].strip()

    for ln in body:
        if not ln.strip():
            continue
        code, seq, inc, com = cut(ln, 0), cut(ln, 1), cut(ln, 2), cut(ln, 3)
        if not code:
            if rows:
                if inc:
                    rows[-1][3] = rows[-1][3].rstrip(", ") + ", " + inc.rstrip(",")
                if com:
                    rows[-1][4] = (rows[-1][4] + " " + com).strip()
            continue
        m = re.match(r"^'(.)'$", code)
        if m:
            t = ord(m.group(1))
        elif re.match(r"^0x[0-9A-Fa-f]+$", code):
            t = int(code, 16)
        else:
            continue
        s = seq.split()[0] if seq else "all"
        if s == "all":
            lo, hi = 0, 255
        elif re.match(r"^[0-9A-Fa-f]{1,2}-[0-9A-Fa-f]{1,2}$", s):
            lo, hi = (int(x, 16) for x in s.split("-"))
        elif re.match(r"^[0-9A-Fa-f]{1,2}$", s):
            lo = hi = int(s, 16)
        else:
            lo, hi = 0, 255
        rows.append([t, lo, hi, inc.rstrip(","), com])
    return rows


def parse_special(rows: list[list[str]]) -> list[dict]:
    """ioctls-special.tsv -> matching rules (dir, type, nr range, size rule, name template)."""
    out = []
    for r in rows:
        kind, header, name, d, code, rule, owner = r[:7]
        code_i = int(code, 16)
        t, nr = (code_i >> 8) & 0xFF, code_i & 0xFF
        item = {"kind": kind, "header": header, "name": name, "dir": IOCTL_DIRS[d], "type": t,
                "nr_lo": nr, "nr_hi": nr, "size_mult": 0, "size_fixed": -1, "param": "", "owner": owner,
                "plain": code_i if kind == "plain" else -1}
        if kind == "plain":
            pass
        elif kind != "param":
            raise GenError(f"ioctls-special.tsv: unknown kind {kind}")
        elif m := re.match(r"^N\*(\d+)\b", rule):
            item.update(size_mult=int(m.group(1)), param="N")
        elif rule == "len":
            item.update(size_mult=1, param="len")
        elif m := re.match(r"^nr = 0x([0-9a-f]+) \+ (\w+) \(\w+ 0\.\.0x([0-9a-f]+)\); size = len$", rule):
            lo = int(m.group(1), 16)
            item.update(nr_lo=lo, nr_hi=lo + int(m.group(3), 16), size_mult=1, param=m.group(2) + ",len")
        elif m := re.match(r"^nr = 0x([0-9a-f]+) \+ (\w+); size = .*?(\d+)\)?$", rule):
            lo = int(m.group(1), 16)
            # the parameter is an ABS_* axis: ABS_CNT is 0x40 in Linux 6.19.9 (linux/input-event-codes.h)
            item.update(nr_lo=lo, nr_hi=lo + 0x3F, size_fixed=int(m.group(3)), param=m.group(2))
        else:
            raise GenError(f"ioctls-special.tsv: size rule not understood: {rule!r} ({name})")
        if item["nr_lo"] != nr:
            raise GenError(f"ioctls-special.tsv: {name}: nr rule disagrees with code {code}")
        out.append(item)
    return out


class IoctlRules:
    def __init__(self, groups: dict[str, list[str]], known_classes: dict, special: list[dict]):
        self.groups = groups
        self.known = known_classes
        self.by_name = defaultdict(list)
        self.by_header = defaultdict(list)
        self.by_type = defaultdict(list)
        self.class_default: dict[str, tuple[str, str]] = {}
        self.owner_classes: dict[str, str] = {}
        self.rule_ids: dict[tuple, int] = {}
        for r in read_tsv(FACTS / "ioctl-handlers.tsv"):
            r = r + [""] * (5 - len(r))
            kind, key, classes, handler, note = r[:5]
            if kind == "name":
                self.by_name[key].append((self.expand(classes), handler, note))
            elif kind == "header":
                self.by_header[key].append((self.expand(classes), handler, note))
            elif kind == "type":
                self.by_type[int(key, 16)].append((self.expand(classes), handler, note))
            elif kind == "owner":
                self.owner_classes[key] = classes
            elif kind == "class":
                for c in self.expand(key).split(","):
                    self.class_default[c] = (handler, note)
            else:
                raise GenError(f"ioctl-handlers.tsv: unknown kind {kind!r}")
        # derived: header -> owner driver from ioctls-special.tsv, classes from the owner rows
        for s in special:
            owner = s["owner"]
            if owner not in self.owner_classes:
                raise GenError(f"ioctl-handlers.tsv: no owner row for {owner} (named in ioctls-special.tsv)")
            rule = (self.expand(self.owner_classes[owner]), owner, "")
            if rule not in self.by_header[s["header"]]:
                self.by_header[s["header"]].append(rule)

    def expand(self, classes: str) -> str:
        if classes == "*":
            return "*"
        out = []
        for c in classes.split(","):
            members = self.groups.get(c, [c]) if c.startswith("@") else [c]
            for m in members:
                if m not in self.known:
                    raise GenError(f"ioctl-handlers.tsv: unknown device class {m!r}")
                if m not in out:
                    out.append(m)
        return ",".join(out)

    def rules_for(self, name: str, header: str, type_: int) -> list[tuple]:
        return self.by_name.get(name) or self.by_header.get(header) or self.by_type.get(type_) or []

    def ids(self, rules: list[tuple]) -> str:
        out = []
        for rule in rules:
            if rule not in self.rule_ids:
                self.rule_ids[rule] = len(self.rule_ids) + 1
            out.append(str(self.rule_ids[rule]))
        return ",".join(out)


def read_ioctl_table(path: Path) -> list[tuple[int, str, str]]:
    rows = []
    for r in read_tsv(path):
        header, name, d, code, size = r[:5]
        req = (IOCTL_DIRS[d] << 30) | (int(size, 16) << 16) | int(code, 16)
        rows.append((req, name, header))
    rows.sort(key=lambda x: (x[0], x[1], x[2]))
    return rows


def gen_ioctls(src: Sources, out: Path, tax: Taxonomy, maint: Maintainers, groups, known) -> set[str]:
    """Writes the ioctl tables; returns the handler files."""
    special = parse_special(read_tsv(src.ref("ioctls-special.tsv")))
    rules = IoctlRules(groups, known, special)
    facts = ["ioctl-handlers.tsv", "device-classes.tsv"]
    tables = {"64": "ioctls-64bit.tsv", "32": "ioctls-32bit.tsv"}
    for abi, fname in tables.items():
        rows = [[f"0x{req:08x}", name, header, rules.ids(rules.rules_for(name, header, (req >> 8) & 0xFF))]
                for req, name, header in read_ioctl_table(src.ref(fname))]
        header = src.describe([fname, "ioctls-special.tsv"], facts)
        header.insert(2, f"ioctl requests of the {abi}-bit ABIs: full request code (dir<<30|size<<16|type<<8|nr), "
                         "name, uapi header, handler rule ids (ioctl-rules.tsv).")
        write_tsv(out, f"ioctls-{abi}.tsv", header, ["request", "name", "header", "rules"], rows)
    arch_rows = []
    arch_files = []
    for tag in sorted({a["ioctl_table"] for a in arches().values()} - {"-"}):
        arch = tag                                   # the rows' arch column names the table (arm64-compat: arm)
        fname = f"ioctls-arch-{tag}.tsv"
        arch_files.append(fname)
        for req, name, header in read_ioctl_table(src.ref(fname)):
            arch_rows.append([arch, f"0x{req:08x}", name, header,
                              rules.ids(rules.rules_for(name, header, (req >> 8) & 0xFF))])
    header = src.describe(arch_files + ["ioctls-special.tsv"], facts)
    header.insert(2, "Architecture-specific ioctl requests (they replace a same-named request of the common table).")
    write_tsv(out, "ioctls-arch.tsv", header, ["arch", "request", "name", "header", "rules"], arch_rows)

    sp_rows = []
    for s in special:
        sp_rows.append([s["kind"], s["dir"], f"0x{s['type']:02x}", f"0x{s['nr_lo']:02x}", f"0x{s['nr_hi']:02x}",
                        s["size_mult"], s["size_fixed"],
                        f"0x{s['plain']:04x}" if s["plain"] >= 0 else "", s["name"], s["param"], s["header"],
                        rules.ids(rules.rules_for(s["name"], s["header"], s["type"]))])
    header = src.describe(["ioctls-special.tsv"], facts)
    header.insert(2, "Size-parameterised and plain-number ioctl requests. param: match dir, type and nr in "
                     "[nr_lo, nr_hi]; size must be a multiple of size_mult (>0) or equal size_fixed (>=0). "
                     "plain: the whole request equals 'plain'.")
    write_tsv(out, "ioctls-special.tsv", header,
              ["kind", "dir", "type", "nr_lo", "nr_hi", "size_mult", "size_fixed", "plain", "name", "param",
               "header", "rules"], sp_rows)

    handler_files = set()
    rule_rows = []
    for (classes, handler, note), rid in sorted(rules.rule_ids.items(), key=lambda kv: kv[1]):
        rule_rows.append([rid, classes, handler, note])
        handler_files.add(handler)
    header = src.describe(["ioctls-special.tsv"], facts)
    header.insert(2, "ioctl handler rules: the file that handles a request on an fd of one of these classes.")
    write_tsv(out, "ioctl-rules.tsv", header, ["id", "classes", "handler", "note"], rule_rows)

    cd_rows = [[c, h, n] for c, (h, n) in sorted(rules.class_default.items())]
    handler_files.update(h for _, h, _ in cd_rows)
    header = src.describe([], facts)
    header.insert(2, "Per device class: the file whose ioctl entry point every request on such an fd reaches.")
    write_tsv(out, "ioctl-class-defaults.tsv", header, ["class", "handler", "note"], cd_rows)

    magic = parse_ioctl_number_rst(src.ref("ioctl-number.rst").read_text(encoding="utf-8"))
    header = src.describe(["ioctl-number.rst"], [])
    header.insert(2, "Registered ioctl type bytes ('magic') and nr ranges with their header and comment.")
    write_tsv(out, "ioctl-magic.tsv", header, ["type", "nr_lo", "nr_hi", "include", "comment"],
              [[f"0x{t:02x}", f"0x{lo:02x}", f"0x{hi:02x}", inc, com] for t, lo, hi, inc, com in magic])

    handler_files.add("fs/ioctl.c")
    f_rows = []
    for f in sorted(handler_files):
        sub = tax.by_path(f)
        if sub is None:
            raise GenError(f"no taxonomy prefix covers ioctl handler {f}")
        f_rows.append([f, sub, maint.lookup(f)])
    header = src.describe(["MAINTAINERS"], ["subsystem-paths.tsv", "ioctl-handlers.tsv"])
    header.insert(2, "ioctl handler files: subsystem id and MAINTAINERS sections (most specific first).")
    write_tsv(out, "kernel-files.tsv", header, ["file", "subsystem", "maintainers"], f_rows)
    return handler_files


# ----------------------------------------------------------------------------- kernel configuration (kconfig)

KCONFIG_WORD = re.compile(r"\b(?:CONFIG_)?([A-Z][A-Z0-9_]*)\b")


def conjuncts(expr: str) -> list[str]:
    """The top-level "&&" terms of an expression (outer parentheses of a term removed when they wrap it all)."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and expr.startswith(" && ", i):
            terms.append(expr[start:i])
            start = i + 4
    terms.append(expr[start:])
    return [t.strip() for t in terms]


def and_expr(*parts: str) -> str:
    """Conjunction of Kconfig expressions, dropping "y" and repeated terms; "n" if any term is "n"."""
    terms = []
    for p in parts:
        for t in conjuncts(p):
            if t == "n":
                return "n"
            if t != "y" and t not in terms:
                terms.append(t)
    if not terms:
        return "y"
    if len(terms) == 1:
        return terms[0]
    return " && ".join(f"({t})" if "||" in t else t for t in terms)


def keyed_rows(path: Path) -> tuple[list[str], list[dict]]:
    """(column names, rows as dicts) of a reference TSV."""
    cols = None
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if cols is None:
            cols = cells
            continue
        rows.append(dict(zip(cols, cells)))
    return cols or [], rows


def platform_arches(symbol: str, f: str, fc: dict, sym_defs: dict) -> str:
    """The kprof arches of a board driver: those whose Kconfig tree defines the platform symbol. Checked: the
    file's gating symbol depends on the platform symbol, or on a symbol that the platform symbol selects."""
    defs = sym_defs.get(symbol)
    if not defs or any(d["arches"] == "all" for d in defs):
        raise GenError(f"kconfig-class-use.tsv: platform {symbol} is not an arch-specific Kconfig symbol")
    trees = sorted({a for d in defs for a in re.split(r"[ ,]+", d["arches"]) if a})
    if f not in fc:
        raise GenError(f"kconfig-class-use.tsv: platform file {f} is not in kconfig/file-config.tsv")
    gate = fc[f]["gating_symbol"][len("CONFIG_"):]
    deps = set()
    for d in sym_defs.get(gate, []):
        deps.update(KCONFIG_WORD.findall(d["depends_on"] + " " + d["enclosing_if_menu"]))
    via = [s for s in deps if any(re.search(rf"\b{symbol}\b", d["selected_by"]) for d in sym_defs.get(s, []))]
    if symbol not in deps and not via:
        raise GenError(f"kconfig-class-use.tsv: {f} ({gate}) does not depend on platform {symbol}")
    kprof = defaultdict(list)                 # $(SRCARCH) -> the kprof arches built from that arch tree
    for arch, a in arches().items():
        kprof[a["srcarch"]].append(arch)
    return ",".join(",".join(kprof[t]) for t in trees if t in kprof)


def gen_kconfig(src: Sources, out: Path, tax: Taxonomy, syscall_rows: dict[str, list[list]],
                handler_files: set[str], known_classes: dict) -> None:
    """kconfig-*.tsv: the Kconfig condition of every syscall, ioctl handler file and device-class file kprof
    names, the Kconfig facts of the symbols involved, and the Documentation/features rows."""
    fc = {r["file"]: r for r in keyed_rows(src.ref("kconfig/file-config.tsv"))[1]}
    cond = {(r["kind"], r["name"]): r for r in keyed_rows(src.ref("kconfig/cond-syscalls.tsv"))[1]}
    in_file = {(r["file"], r["line"]): r["in_file_condition"]
               for r in keyed_rows(src.ref("kconfig/syscall-config.tsv"))[1]}
    sym_defs: dict[str, list[dict]] = defaultdict(list)
    for r in keyed_rows(src.ref("kconfig/kconfig-symbols.tsv"))[1]:
        sym_defs[r["symbol"][len("CONFIG_"):]].append(r)
    extra_classes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for cls, f, cond_, kind, chain, note in read_tsv(FACTS / "kconfig-extra-files.tsv"):
        if f in fc:
            raise GenError(f"kconfig-extra-files.tsv: {f} is in kconfig/file-config.tsv: use the reference")
        for word in KCONFIG_WORD.findall(cond_):
            if {d["type"] for d in sym_defs.get(word, [])} != {kind}:
                raise GenError(f"kconfig-extra-files.tsv: {word} is not a {kind} of kconfig/kconfig-symbols.tsv")
        fc[f] = {"file": f, "minimal_expression": cond_, "config_expression": cond_, "arch": "all", "tristate": kind,
                 "module_name": "-", "gating_symbol": cond_, "in_file_ifdefs": "-",
                 "kbuild_chain": chain + " (hand-read: tools/kernel_facts/kconfig-extra-files.tsv)"}
        extra_classes[cls].append((f, note))
    used_by: dict[str, set[str]] = defaultdict(set)

    def file_cond(f: str, what: str) -> dict:
        row = fc.get(f)
        if row is None:
            raise GenError(f"kconfig/file-config.tsv has no row for {f} ({what})")
        used_by[f].add(what)
        return row

    # -- syscalls, per kprof arch
    sc_rows = []
    for arch, rows in syscall_rows.items():
        column, abi = arches()[arch]["kconfig_column"], arches()[arch]["abi_condition"]
        for num, name, entry, f, line, macro, sub, *_rest in rows:
            note = _rest[-1]
            if f:
                file_cond(f, "syscall")
            key = None
            if entry and entry.startswith("compat_sys_"):
                key = ("COND_SYSCALL_COMPAT", entry[len("compat_sys_"):])
            elif entry and entry.startswith("sys_"):
                key = ("COND_SYSCALL", entry[len("sys_"):])
            c = cond.get(key) if key else None
            if c is not None and c[column] not in ("-", ""):
                cell = c[column]
                if cell.startswith("n (no definition)"):
                    expr, source = "n", f"kernel/sys_ni.c:{c['sys_ni_line']} {c['kind']}({c['name']}): no definition"
                else:
                    expr, source = and_expr(abi, cell), f"kernel/sys_ni.c:{c['sys_ni_line']} {c['kind']}({c['name']})"
            elif f:
                # not in sys_ni.c: the table names the entry point and there is no weak -ENOSYS stub, so every
                # kernel of this arch that links has a definition (brk and munmap: mm/mmap.c under MMU, mm/nommu.c
                # otherwise). The file's Kbuild condition and the #if around the definition say which variant
                # serves it, never whether it is there: the same rule that makes sys_ni.c's cells "y" where the
                # arch forces the condition (mprotect on x86_64).
                expr = abi
                inner = in_file.get((f, str(line)), "y") if line is not None else "y"
                source = (f"always there: no COND_SYSCALL stub, so a kernel that links defines it (here {f}, "
                          f"Kbuild: {fc[f]['minimal_expression']}")
                source += f"; #if at the definition: {inner})" if inner != "y" else ")"
            else:
                expr, source = "n", note or "not implemented: no definition"
            sc_rows.append([arch, name, f or "-", expr, source])
    header = src.describe(["kconfig/cond-syscalls.tsv", "kconfig/file-config.tsv", "kconfig/syscall-config.tsv"], [])
    header.insert(2, "Kconfig condition of each syscall of kprof's syscalls-<arch>.tsv tables: the per-arch cell of "
                     "kernel/sys_ni.c's COND_SYSCALL entry where there is one (the syscall can be configured out), "
                     "else y (the ABI's condition for arm64-compat): without a sys_ni.c stub the kernel links only "
                     "when a definition exists, so the defining file's Kbuild condition and #if (shown in source) "
                     "pick the variant, not whether the syscall is there; "
                     "n = the ABI has no working definition. arm64-compat needs CONFIG_COMPAT besides.")
    write_tsv(out, "kconfig-syscalls.tsv", header, ["arch", "name", "file", "condition", "source"], sc_rows)

    # -- device classes
    ref_classes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in keyed_rows(src.ref("kconfig/device-class-files.tsv"))[1]:
        ref_classes[r["class"]].append((r["file"], r["note"]))
    for cls, rows in extra_classes.items():
        if cls in ref_classes:
            raise GenError(f"kconfig-extra-files.tsv: class {cls} is in kconfig/device-class-files.tsv")
        ref_classes[cls] = rows
    uses: dict[tuple[str, str], list[tuple[str, str, str, str]]] = defaultdict(list)
    also: dict[str, list[str]] = defaultdict(list)
    nets: dict[str, list[tuple[str, str]]] = defaultdict(list)
    reasons: dict[str, str] = {}
    execs: list[str] = []
    platforms: dict[str, tuple[str, str]] = {}      # file -> (kprof arches, "board (SYMBOL)")
    for r in read_tsv(FACTS / "kconfig-class-use.tsv"):
        kind, key, f, when, mode, note, also_needs = (r + [""] * 7)[:7]
        if kind == "also":
            if f not in ref_classes and not f.startswith("net:"):
                raise GenError(f"kconfig-class-use.tsv: {f} is not a class of device-class-files.tsv")
            also[key].append(f)
        elif kind == "use":
            if f not in {x for x, _ in ref_classes.get(key, [])}:
                raise GenError(f"kconfig-class-use.tsv: {key} {f} is not a row of device-class-files.tsv")
            if mode not in ("needs", "one-of", "context") or not (when == "always" or when.startswith("path:")):
                raise GenError(f"kconfig-class-use.tsv: bad when/mode for {key} {f}: {when} {mode}")
            if when.startswith("path:"):
                re.compile(when[5:])
            if also_needs and also_needs not in fc.get(f, {}).get("in_file_ifdefs", "").split(","):
                raise GenError(f"kconfig-class-use.tsv: {also_needs} is not an #if symbol of {f} (in_file_ifdefs)")
            uses[(key, f)].append((when, mode, note, also_needs))
        elif kind == "net":
            nets[key].append((f, note))
        elif kind == "exec":
            if f not in ref_classes:
                raise GenError(f"kconfig-class-use.tsv: exec class {f} is not in device-class-files.tsv")
            execs.append(f)
        elif kind == "reason":
            reasons[key] = note
        elif kind == "platform":
            platforms[f] = (platform_arches(key, f, fc, sym_defs), f"{note} ({key})")
        else:
            raise GenError(f"kconfig-class-use.tsv: unknown kind {kind!r}")
    cl_rows = []

    def class_rows(kclass: str, ref: str) -> None:
        for f, note in ref_classes[ref]:
            file_cond(f, f"class {kclass}")
            only_on, board = platforms.get(f, ("-", "-"))
            for when, mode, unote, also in uses.get((ref, f)) or [("always", "needs", "", "")]:
                cond = and_expr(fc[f]["minimal_expression"], also) if also else "-"
                cl_rows.append([kclass, f, when, mode, ref, only_on, board, cond, unote or note])

    def net_rows(kclass: str, family: str) -> None:
        if family not in nets:
            raise GenError(f"kconfig-class-use.tsv: no net row for {family}")
        for f, note in nets[family]:
            file_cond(f, f"{kclass}")
            cl_rows.append([kclass, f, "always", "needs", f"net:{family}", "-", "-", "-", note])

    for kclass in known_classes:
        n = len(cl_rows)
        if kclass in ref_classes:
            class_rows(kclass, kclass)
        for target in also.get(kclass, []):
            if target.startswith("net:"):
                net_rows(kclass, target[4:])
            else:
                class_rows(kclass, target)
        if kclass in reasons:
            cl_rows.append([kclass, "-", "always", "reason", "-", "-", "-", "-", reasons[kclass]])
        if len(cl_rows) == n:
            raise GenError(f"device class {kclass}: no file in kconfig/device-class-files.tsv and no reason row "
                           "in kconfig-class-use.tsv")
    for family in nets:
        net_rows(f"net:{family}", family)
    for ref in execs:
        class_rows("exec:program", ref)
    header = src.describe(["kconfig/device-class-files.tsv"], ["kconfig-class-use.tsv", "kconfig-extra-files.tsv",
                                                                "device-classes.tsv"])
    header.insert(2, "Driver and core files behind each kprof device class (and net:FAMILY for network addresses, "
                     "exec:program for executed programs). when: always, or path:REGEX (only if one of the "
                     "footprint's device paths of the class matches); mode: needs | one-of (at least one of the "
                     "class's applicable one-of files) | context (listed, never required) | reason (no file: why); "
                     "only_on: a board driver's kprof arches (its platform symbol's arch trees), elsewhere its uses "
                     "are context; platform: the board and its Kconfig symbol; condition: what these paths need "
                     "when more than the file's Kbuild condition (an #if inside the file), else -.")
    write_tsv(out, "kconfig-classes.tsv", header, ["class", "file", "when", "mode", "from", "only_on", "platform",
                                                   "condition", "note"], cl_rows)

    # -- files
    for f in handler_files:
        file_cond(f, "ioctl handler")
    f_rows = []
    for f in sorted(used_by):
        r = fc[f]
        f_rows.append([f, tax.by_path(f) or "-", r["arch"], r["minimal_expression"], r["config_expression"],
                       r["tristate"], r["module_name"], r["in_file_ifdefs"], r["kbuild_chain"],
                       ", ".join(sorted(used_by[f]))])
    header = src.describe(["kconfig/file-config.tsv"], ["kconfig-extra-files.tsv", "subsystem-paths.tsv"])
    header.insert(2, "Kconfig condition under which Kbuild compiles each kernel file kprof names (syscall "
                     "definitions, ioctl handlers, device-class drivers): minimal and literal expression, "
                     "tristate (can be a module) / bool / y (always built), module name, the #if symbols inside "
                     "the file, and the Kbuild chain as evidence.")
    write_tsv(out, "kconfig-files.tsv", header,
              ["file", "subsystem", "arch", "condition", "literal", "kind", "module", "in_file_ifdefs",
               "kbuild_chain", "named_by"], f_rows)

    # -- symbols: everything named above, closed under depends on / enclosing if
    _, sym_rows = keyed_rows(src.ref("kconfig/kconfig-symbols.tsv"))
    by_sym: dict[str, list[dict]] = defaultdict(list)
    for r in sym_rows:
        by_sym[r["symbol"][len("CONFIG_"):]].append(r)
    todo = set()
    for r in sc_rows:
        todo.update(KCONFIG_WORD.findall(r[3]))
    for r in f_rows:
        todo.update(KCONFIG_WORD.findall(r[3]))
    todo = {s for s in todo if s in by_sym}
    wanted: set[str] = set()
    while todo:
        s = todo.pop()
        wanted.add(s)
        for d in by_sym[s]:
            for w in KCONFIG_WORD.findall(d["depends_on"] + " " + d["enclosing_if_menu"]):
                if w in by_sym and w not in wanted:
                    todo.add(w)
    s_rows = [[r["symbol"], r["type"], r["prompt"], r["defined_at"], r["arches"], r["depends_on"],
               r["enclosing_if_menu"], r["defaults"], r["selected_by"]]
              for s in sorted(wanted) for r in by_sym[s]]
    header = src.describe(["kconfig/kconfig-symbols.tsv"], [])
    header.insert(2, "Kconfig facts of every symbol in kconfig-syscalls.tsv and kconfig-files.tsv and of their "
                     "depends on / enclosing if symbols: one row per definition (arches = the $(SRCARCH) "
                     "trees that reach it).")
    write_tsv(out, "kconfig-symbols.tsv", header,
              ["symbol", "type", "prompt", "defined_at", "arches", "depends_on", "enclosing_if", "defaults",
               "selected_by"], s_rows)

    # -- Documentation/features rows that concern syscalls
    feats = {r["feature"]: r for r in keyed_rows(src.ref("kconfig/features-arch-support.tsv"))[1]}
    ft_rows = []
    for feature, scs, why in read_tsv(FACTS / "kconfig-features.tsv"):
        r = feats.get(feature)
        if r is None:
            raise GenError(f"kconfig-features.tsv: {feature} is not in features-arch-support.tsv")
        ft_rows.append([feature, r["subsystem"], r["kconfig"], r["arm"], r["arm64"], r["x86"], r["riscv"], scs, why,
                        r["description"]])
    header = src.describe(["kconfig/features-arch-support.tsv"], ["kconfig-features.tsv"])
    header.insert(2, "Documentation/features/*/arch-support.txt rows (get_feat list --arch=A) that concern a "
                     "syscall: status for arm, arm64, x86, riscv (ok / TODO / N/A / .. = not possible).")
    write_tsv(out, "kconfig-features.tsv", header,
              ["feature", "subsystem", "kconfig", "arm", "arm64", "x86", "riscv", "syscalls", "why", "description"],
              ft_rows)


# ----------------------------------------------------------------------------- errnos

def gen_errnos(src: Sources, out: Path) -> None:
    rows = read_tsv(FACTS / "errnos.tsv")
    seen_n, seen_name = set(), set()
    for r in rows:
        if len(r) != 4 or not r[0].isdigit() or not re.fullmatch(r"E[A-Z0-9_]+", r[1]):
            raise GenError(f"errnos.tsv: bad row {r!r}")
        names = [r[1], *filter(None, r[3].split(","))]
        if r[0] in seen_n or seen_name & set(names):
            raise GenError(f"errnos.tsv: {r[0]} or one of {names} twice")
        seen_n.add(r[0])
        seen_name.update(names)
    header = src.describe([], ["errnos.tsv"])
    header.insert(2, "errno number -> name as strace prints it (one table for strace, ptrace and ftrace); restart: "
                     "strace's text for the codes it shows as '= ? NAME (text)'; aliases: other names, read only.")
    write_tsv(out, "errnos.tsv", header, ["number", "name", "restart", "aliases"],
              sorted(rows, key=lambda r: int(r[0])))


# ----------------------------------------------------------------------------- main

def generate(reference: Path, out: Path) -> None:
    src = Sources(reference)
    out.mkdir(parents=True, exist_ok=True)
    tax = Taxonomy()
    maint = Maintainers(src.ref("MAINTAINERS").read_text(encoding="utf-8"))
    gen_subsystems(src, out, tax)
    syscall_rows = gen_syscalls(src, out, tax, maint)
    groups, known = gen_devices(src, out)
    handler_files = gen_ioctls(src, out, tax, maint, groups, known)
    gen_kconfig(src, out, tax, syscall_rows, handler_files, known)
    gen_errnos(src, out)
    gen_arches(src, out)
    gen_address_families(src, out)
    known = {n for rows in syscall_rows.values() for r in rows
             for n in (r[1], r[2][4:] if r[2] and r[2].startswith("sys_") else r[1])}   # names, entry points
    known |= {r[1] for r in read_tsv(out / "syscall-aliases.tsv")} | {r[1] for r in read_tsv(out / "syscall-subcalls.tsv")}
    gen_syscall_args(src, out, known)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                    help="directory with the Linux reference files (default: ../shared/reference/kernel)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: profiler/kernel/data)")
    args = ap.parse_args(argv)
    try:
        generate(args.reference, args.out)
    except GenError as e:
        print(f"gen_kernel_data: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
