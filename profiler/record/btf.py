"""Where the fields the bpf backend reads lie in the running kernel's structs, from its own BTF.

The bpftrace program reads a handful of kernel fields (the task's fd table, the file, inode, socket and
dentry behind an fd, a task's exit code). Written as ``$f->f_inode``, bpftrace (0.17) has clang parse the
kernel's types on every run; written as loads at fixed offsets, the program is ready ~0.5 s sooner and its
start-up takes ~40 % less CPU (bench/README.md). The offsets are this kernel's, read here from
``/sys/kernel/btf/vmlinux`` (the BTF format: include/uapi/linux/btf.h), never assumed; so is the size of a
pointer (the kernel's ``long``).
"""
from __future__ import annotations

import functools
import struct

from profiler.errors import KprofError

VMLINUX = "/sys/kernel/btf/vmlinux"
_MAGIC = 0xEB9F
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _ENUM64 = 1, 2, 3, 4, 5, 6, 19
_MODIFIERS = {8, 9, 10, 11, 18}       # typedef, volatile, const, restrict, type tag: the same object
# kind → (bytes after the 12-byte type record, bytes per vlen item), btf.h
_EXTRA = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0), 8: (0, 0), 9: (0, 0),
          10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8), 14: (4, 0), 15: (0, 12), 16: (0, 0), 17: (4, 0),
          18: (0, 0), 19: (0, 12)}


class Layout:
    """The kernel's types, indexed once: ``field("file.f_path.dentry")`` → (byte offset, size, signed)."""

    def __init__(self, data: bytes, origin: str = VMLINUX):
        self.origin = origin
        if len(data) < 24:
            raise KprofError(f"{origin}: not BTF type information (too short)")
        self.e = "<" if struct.unpack_from("<H", data)[0] == _MAGIC else ">"
        magic, _ver, _flags, hdr, toff, tlen, soff, slen = struct.unpack_from(self.e + "HBBIIIII", data)
        if magic != _MAGIC:
            raise KprofError(f"{origin}: not BTF type information (magic {magic:#x})")
        if hdr + max(toff + tlen, soff + slen) > len(data):
            raise KprofError(f"{origin}: damaged BTF type information (its sections run past its end)")
        self.data, self.strings = data, data[hdr + soff:hdr + soff + slen]
        self.at = [0]                   # type id → where its record starts (id 0 is void)
        self.structs: dict[int, list[int]] = {}     # a struct's name (string offset) → its type ids
        self.pointer = None             # bytes of a pointer: the size of the kernel's long
        ulong = self._offset("long unsigned int")
        pos, end, rec = hdr + toff, hdr + toff + tlen, struct.Struct(self.e + "III").unpack_from
        while pos + 12 <= end:
            name, info, size = rec(data, pos)
            kind = (info >> 24) & 0x1F
            if kind not in _EXTRA:
                raise KprofError(f"{origin}: BTF type kind {kind} is newer than this kprof knows (type "
                                 f"{len(self.at)}); the bpf backend cannot read this kernel's types: use "
                                 "--backend strace")
            if kind == _STRUCT and name:
                self.structs.setdefault(name, []).append(len(self.at))
            elif kind == _INT and name == ulong:
                self.pointer = size
            self.at.append(pos)
            fixed, per = _EXTRA[kind]
            pos += 12 + fixed + per * (info & 0xFFFF)
        if pos != end or self.pointer not in (4, 8):
            raise KprofError(f"{origin}: damaged BTF type information (its types do not end where its header "
                             "says, or it has no unsigned long)")

    def _name(self, off: int) -> str:
        return self.strings[off:self.strings.index(b"\0", off)].decode()

    def _offset(self, name: str) -> int | None:
        """Where ``name`` is in the string section (each string is there once), None if it is not."""
        at = self.strings.find(b"\0" + name.encode() + b"\0")
        return None if at < 0 else at + 1

    def _type(self, tid: int) -> tuple[int, int, int, int, int]:
        """(type id, kind, vlen, kind_flag, size or referenced type) of type ``tid``, modifiers looked through."""
        while True:
            _name, info, size = struct.unpack_from(self.e + "III", self.data, self.at[tid])
            kind = (info >> 24) & 0x1F
            if kind not in _MODIFIERS:
                return tid, kind, info & 0xFFFF, info >> 31, size
            tid = size

    def _cannot(self, what: str) -> KprofError:
        return KprofError(f"{self.origin}: {what}; the bpf backend cannot read it: use --backend strace")

    def _member(self, tid: int, name: str) -> tuple[int, int] | None:
        """(type id, bit offset) of member ``name`` of struct/union ``tid``, looking into anonymous members."""
        tid, _kind, vlen, bitfields, _size = self._type(tid)
        base = self.at[tid] + 12
        for i in range(vlen):
            mname, mtype, moff = struct.unpack_from(self.e + "III", self.data, base + 12 * i)
            if bitfields:
                if moff >> 24:
                    if mname and self._name(mname) == name:
                        raise self._cannot(f"{name} is a bit-field in this kernel")
                    continue
                moff &= 0xFFFFFF
            if mname and self._name(mname) == name:
                return mtype, moff
            if not mname and self._type(mtype)[1] in (_STRUCT, _UNION):
                found = self._member(mtype, name)
                if found:
                    return found[0], found[1] + moff
        return None

    def field(self, path: str) -> tuple[int, int, bool]:
        """``struct.member[.member…]`` → (byte offset, size in bytes, signed) of a pointer or integer field; of an
        array's first element for an array (``task_struct.pending.signal.sig``: sig[0])."""
        top, *names = path.split(".")
        ids = self.structs.get(self._offset(top), [])
        if not ids:
            raise self._cannot(f"this kernel has no struct {top}")
        if len(ids) > 1:
            raise self._cannot(f"this kernel defines struct {top} {len(ids)} times, and which one is meant is "
                               "not known")
        tid, bits = ids[0], 0
        for name in names:
            found = self._member(tid, name)
            if found is None:
                raise self._cannot(f"struct {top} has no field {path.split('.', 1)[1]} in this kernel")
            tid, off = found
            bits += off
        tid, kind, _vlen, flag, size = self._type(tid)
        if kind == _ARRAY:              # struct btf_array {type, index_type, nelems} after the type record
            tid, kind, _vlen, flag, size = self._type(struct.unpack_from(self.e + "I", self.data, self.at[tid] + 12)[0])
        if kind == _PTR:
            size, signed = self.pointer, False
        elif kind == _INT:
            enc = struct.unpack_from(self.e + "I", self.data, self.at[tid] + 12)[0]
            if enc & 0xFF != 8 * size or (enc >> 16) & 0xFF:   # BTF_INT_BITS, BTF_INT_OFFSET: a bit-field
                raise self._cannot(f"{path} is a bit-field in this kernel")
            signed = bool((enc >> 24) & 1)                    # BTF_INT_SIGNED
        elif kind in (_ENUM, _ENUM64):
            signed = bool(flag)
        else:
            raise self._cannot(f"{path} is not a pointer or an integer in this kernel")
        if bits % 8 or size not in (1, 2, 4, 8):
            raise self._cannot(f"{path} is not a whole 1, 2, 4 or 8-byte field in this kernel")
        return bits // 8, size, signed


@functools.lru_cache(maxsize=1)
def load(path: str = VMLINUX) -> Layout:
    """The layout of the kernel's types in ``path``, read once per process (a run's repeats share it)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KprofError(f"cannot read the kernel's BTF type information {path}: {e.strerror}; the bpf "
                         "backend needs it: use --backend strace") from None
    try:
        return Layout(data, path)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
        raise KprofError(f"{path}: damaged BTF type information ({type(e).__name__}: {e}); the bpf backend "
                         "cannot read this kernel's types: use --backend strace") from None
