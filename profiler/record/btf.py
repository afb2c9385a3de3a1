"""Where the fields the bpf backend reads lie in the running kernel's structs, from its own BTF.

The bpftrace program reads a handful of kernel fields (the task's fd table, the file, inode, socket and
dentry behind an fd, a task's exit code). Written as ``$f->f_inode``, bpftrace (0.17) has clang parse the
kernel's types on every run; written as loads at fixed offsets, the program is ready ~0.5 s sooner and its
start-up takes ~40 % less CPU (bench/README.md). The offsets are this kernel's, read here from
``/sys/kernel/btf/vmlinux`` (the BTF format: include/uapi/linux/btf.h), never assumed.
"""
from __future__ import annotations

import struct

from profiler.errors import KprofError

VMLINUX = "/sys/kernel/btf/vmlinux"
_MAGIC = 0xEB9F
_INT, _PTR, _STRUCT, _UNION, _ENUM, _ENUM64 = 1, 2, 4, 5, 6, 19
_MODIFIERS = {8, 9, 10, 11, 18}       # typedef, volatile, const, restrict, type tag: the same object
# kind → (bytes after the 12-byte type record, bytes per vlen item), btf.h
_EXTRA = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8), 14: (4, 0), 15: (0, 12),
          17: (4, 0), 19: (0, 12)}


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
        self.data, self.strings = data, data[hdr + soff:hdr + soff + slen]
        self.at = [0]                   # type id → where its record starts (id 0 is void)
        self.structs = {}               # struct name → type id
        pos, end, rec = hdr + toff, hdr + toff + tlen, struct.Struct(self.e + "II").unpack_from
        while pos < end:
            name, info = rec(data, pos)
            kind = (info >> 24) & 0x1F
            if kind == _STRUCT and name:
                self.structs.setdefault(self._name(name), len(self.at))
            self.at.append(pos)
            fixed, per = _EXTRA.get(kind, (0, 0))
            pos += 12 + fixed + per * (info & 0xFFFF)

    def _name(self, off: int) -> str:
        return self.strings[off:self.strings.index(b"\0", off)].decode()

    def _type(self, tid: int) -> tuple[int, int, int, int]:
        """(kind, vlen, kind_flag, size or referenced type) of type ``tid``, modifiers looked through."""
        while True:
            _name, info, size = struct.unpack_from(self.e + "III", self.data, self.at[tid])
            kind = (info >> 24) & 0x1F
            if kind not in _MODIFIERS:
                return kind, info & 0xFFFF, info >> 31, size
            tid = size

    def _member(self, tid: int, name: str) -> tuple[int, int] | None:
        """(type id, bit offset) of member ``name`` of struct/union ``tid``, looking into anonymous members."""
        kind, vlen, bitfields, _size = self._type(tid)
        base = self.at[self._resolve(tid)] + 12
        for i in range(vlen):
            mname, mtype, moff = struct.unpack_from(self.e + "III", self.data, base + 12 * i)
            if bitfields:
                if moff >> 24:
                    if mname and self._name(mname) == name:
                        raise KprofError(f"{self.origin}: {name} is a bit-field in this kernel; the bpf backend "
                                         "cannot read it: use --backend strace")
                    continue
                moff &= 0xFFFFFF
            if mname and self._name(mname) == name:
                return mtype, moff
            if not mname and self._type(mtype)[0] in (_STRUCT, _UNION):
                found = self._member(mtype, name)
                if found:
                    return found[0], found[1] + moff
        return None

    def _resolve(self, tid: int) -> int:
        while (struct.unpack_from(self.e + "I", self.data, self.at[tid] + 4)[0] >> 24) & 0x1F in _MODIFIERS:
            tid = struct.unpack_from(self.e + "I", self.data, self.at[tid] + 8)[0]
        return tid

    def field(self, path: str) -> tuple[int, int, bool]:
        """``struct.member[.member…]`` → (byte offset, size in bytes, signed) of a pointer or integer field."""
        top, *names = path.split(".")
        if top not in self.structs:
            raise KprofError(f"{self.origin}: this kernel has no struct {top}; the bpf backend cannot read "
                             "it: use --backend strace")
        tid, bits = self.structs[top], 0
        for name in names:
            found = self._member(tid, name)
            if found is None:
                raise KprofError(f"{self.origin}: struct {top} has no field {path.split('.', 1)[1]} in this "
                                 "kernel; the bpf backend cannot read it: use --backend strace")
            tid, off = found
            bits += off
        kind, _vlen, flag, size = self._type(tid)
        if kind == _PTR:
            size, signed = struct.calcsize("P"), False
        elif kind == _INT:
            signed = bool((struct.unpack_from(self.e + "I", self.data, self.at[self._resolve(tid)] + 12)[0] >> 24) & 1)
        elif kind in (_ENUM, _ENUM64):
            signed = bool(flag)
        else:
            raise KprofError(f"{self.origin}: {path} is not a pointer or an integer in this kernel")
        if bits % 8 or size not in (1, 2, 4, 8):
            raise KprofError(f"{self.origin}: {path} is not a whole 1, 2, 4 or 8-byte field in this kernel")
        return bits // 8, size, signed


def load(path: str = VMLINUX) -> Layout:
    try:
        with open(path, "rb") as f:
            return Layout(f.read(), path)
    except OSError as e:
        raise KprofError(f"cannot read the kernel's BTF type information {path}: {e.strerror}; the bpf "
                         "backend needs it: use --backend strace") from None
