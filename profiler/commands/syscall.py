"""Look up a syscall by name or number: its number on every architecture kprof knows, where Linux
{KERNEL_VERSION} defines it, its subsystem and MAINTAINERS section, and its ELISA category."""
from __future__ import annotations

from profiler.kernel import KERNEL_VERSION

__doc__ = __doc__.replace("{KERNEL_VERSION}", KERNEL_VERSION)   # the --help text


def add_arguments(p) -> None:
    p.add_argument("syscall", help="name (e.g. ppoll, _llseek) or number (e.g. 336, 0x150)")
    p.add_argument("--arch", help="architecture for a number and for the definition (default: this machine's)")


def main(args) -> int:
    from tabulate import tabulate

    from profiler.errors import KprofError
    from profiler.kernel.subsystems import subsystem_label
    from profiler.kernel import syscalls

    arch = syscalls.normalize_arch(args.arch) if args.arch else syscalls.host_arch()
    try:
        number = int(args.syscall, 0)
    except ValueError:
        number = None
    if number is not None:
        name = syscalls.syscall_name(arch, number)
        if name is None:
            raise KprofError(f"no syscall number {number} on {arch} (kernel tables, Linux {KERNEL_VERSION} / system-calls)")
    else:
        name = syscalls.canonical_name(arch, args.syscall)
        if syscalls.syscall_number(arch, name) is None:
            # another arch's name (_llseek), or its other spelling (ausyscall's llseek): show that arch's name
            other = next((a for a in syscalls.ARCHES if syscalls.syscall_number(a, args.syscall) is not None), None)
            if other is None and syscalls.syscall_info(arch, name).subsystem == "unknown":
                raise KprofError(f"no syscall named '{args.syscall}' on any architecture kprof knows")
            if other is not None:
                name = syscalls.canonical_name(other, args.syscall)
    info = syscalls.syscall_info(arch, name)
    rows = [("name", info.name), ("arch", arch if info.arch == arch else f"{info.arch} (a 32-bit program on {arch})"),
            ("number", info.number if info.number is not None else "not on this arch"),
            ("entry point", info.entry or ""), ("defined in", f"{info.defined_in}" + (f" ({info.macro})" if info.macro else "") if info.file else ""),
            ("subsystem", subsystem_label(info.subsystem, info.file)), ("MAINTAINERS", info.maintainers or ""),
            ("ELISA category", info.elisa_category), ("note", info.note or "")]
    print(tabulate(rows, tablefmt="plain"))
    print()
    nums = [(a, syscalls.syscall_number(a, name)) for a in syscalls.ARCHES]
    print(tabulate([(a, n if n is not None else "-") for a, n in nums], headers=["arch", "number"]))
    return 0
