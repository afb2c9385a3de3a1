"""Fault-injection rules: a scenario's ``inject:`` list read into ``Rule`` values, and what the recorders
make of them (strace's ``-e inject=`` options; the durations of a delay for kprof's ptrace tracer).

This sits below the recorders (``profiler.record``) and the fault analysis (``profiler.faults``): both read
the rules, neither is needed to read them. A rule without a path restriction goes through strace's own
``-e inject=``; a rule restricted to a path or an fd class needs kprof's ptrace backend, which checks the
fd or path argument at each call.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from profiler.errors import KprofError
from profiler.kernel import devices, syscalls

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)?$")


@dataclass
class Rule:
    syscalls: list[str]
    error: str | None = None
    retval: int | None = None
    delay_enter: str | None = None
    delay_exit: str | None = None
    when: str | None = None
    path: str | None = None        # glob on the path behind the fd, or the path argument
    fd_class: str | None = None    # devices.classify_path class of the fd

    @property
    def restricted(self) -> bool:
        return self.path is not None or self.fd_class is not None

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in (("error", self.error), ("retval", self.retval),
                                                  ("delay_enter", self.delay_enter),
                                                  ("delay_exit", self.delay_exit), ("when", self.when)) if v is not None)
        where = "".join(f" on {v}" for v in (self.path, self.fd_class) if v)
        return f"{'/'.join(self.syscalls)}{where}: {what}"

    def matches(self, name: str, target: str | None) -> bool:
        """Whether a call (syscall name, the object it acts on: see faults.call_target) falls under this rule."""
        if name not in self.syscalls:
            return False
        if self.path is not None and not (target and fnmatch.fnmatch(target, self.path)):
            return False
        return self.fd_class is None or devices.classify_path(target) == self.fd_class


def delay_us(text: str, where: str) -> int:
    """A rule's delay (``100ms``, ``2s``, ``500us``; a bare number is microseconds) in microseconds."""
    m = _DURATION.match(str(text).strip())
    if not m:
        raise KprofError(f"{where}: '{text}' is not a duration (e.g. 100ms, 2s, 500us)")
    scale = {"us": 1, "ms": 1000, "s": 1_000_000, None: 1}[m.group(2)]
    return int(float(m.group(1)) * scale)


def rule_problem(r: dict) -> str | None:
    """What is wrong with one ``inject:`` entry whatever the arch (what strace would refuse only once the run
    began), or None: ``kprof validate`` says it, and so does a run before anything starts."""
    names = r["syscall"] if isinstance(r["syscall"], list) else [r["syscall"]]
    if not names:
        return "syscall: name at least one syscall"
    if not any(k in r for k in ("error", "retval", "delay_enter", "delay_exit")):
        return "say what to inject: error, retval, delay_enter or delay_exit"
    if "error" in r and "retval" in r:
        return "error or retval, not both (a call fails, or returns a value)"
    if "retval" in r and not 0 <= r["retval"] <= _MAX_RETVAL:
        return f"retval {r['retval']} is out of range (0 to {_MAX_RETVAL}; a failure is error: ENAME)"
    try:
        if r.get("when") is not None:
            check_when(r["when"], "when")
        for k in ("delay_enter", "delay_exit"):
            if k in r:
                delay_us(r[k], k)
    except KprofError as e:
        return str(e)
    return None


def rules_from(spec: list[dict], where: str, arch: str) -> list[Rule]:
    """A scenario's ``inject:`` entries as rules, checked: known syscalls on ``arch``, something to inject,
    delays that are durations."""
    rules = []
    for i, r in enumerate(spec):
        w = f"{where}: inject[{i}]"
        problem = rule_problem(r)
        if problem:
            raise KprofError(f"{w}: {problem}")
        names = r["syscall"] if isinstance(r["syscall"], list) else [r["syscall"]]
        names = [syscalls.canonical_name(arch, n) for n in names]
        unknown = [n for n in names if syscalls.syscall_number(arch, n) is None]
        if unknown:
            raise KprofError(f"{w}: no syscall {', '.join(unknown)} on {arch}")
        rules.append(Rule(names, r.get("error"), r.get("retval"), r.get("delay_enter"), r.get("delay_exit"),
                          None if r.get("when") is None else str(r["when"]), r.get("path"), r.get("fd_class")))
    return rules


def strace_options(rules: list[Rule]) -> list[str]:
    """strace's -e inject= options for the rules (unrestricted ones only: strace cannot filter by path)."""
    out = []
    for r in rules:
        if r.restricted:
            raise KprofError(f"inject rule '{r.describe()}' is restricted to a path or fd class: that needs the "
                             f"ptrace backend (backend: ptrace), strace cannot restrict an injection by path")
        parts = [",".join(r.syscalls)]
        if r.error is not None:
            parts.append(f"error={r.error}")
        if r.retval is not None:
            parts.append(f"retval={r.retval}")
        for k in ("delay_enter", "delay_exit"):
            v = getattr(r, k)
            if v is not None:
                parts.append(f"{k}={delay_us(v, k)}")
        if r.when is not None:
            parts.append(f"when={r.when}")
        out += ["-e", "inject=" + ":".join(parts)]
    return out


WHEN = re.compile(r"(\d+)(?:\.\.(\d+))?(\+(\d*))?")
_MAX_WHEN = 65534                # strace's largest invocation number in when= (65535 is refused)
_MAX_RETVAL = 2 ** 63 - 1        # a retval past a signed 64-bit value is refused by strace


def check_when(expr, where: str) -> re.Match:
    """strace's rules for when=first[..last][+[step]]: every number 1..65534, last not before first; the
    parsed expression."""
    m = WHEN.fullmatch(str(expr).strip())
    if m is None:
        raise KprofError(f"{where}: {expr!r} is not first[..last][+[step]] (e.g. 3, 3+, 2+2, 1..5)")
    numbers = [int(g) for g in (m.group(1), m.group(2), m.group(4)) if g]
    if not all(1 <= n <= _MAX_WHEN for n in numbers):
        raise KprofError(f"{where}: {expr!r}: each number is 1 to {_MAX_WHEN} (strace's range)")
    if m.group(2) and int(m.group(2)) < int(m.group(1)):
        raise KprofError(f"{where}: {expr!r}: the last call comes before the first")
    return m


def when_test(expr: str | None):
    """strace's when=first[..last][+[step]] as a test on the invocation number (counted from 1)."""
    if expr is None:
        return lambda n: True
    m = check_when(expr, "inject: when")
    first, last = int(m.group(1)), int(m.group(2)) if m.group(2) else None
    if m.group(3) is None and last is None:
        return lambda n: n == first
    step = int(m.group(4)) if m.group(4) else 1
    return lambda n: n >= first and (last is None or n <= last) and (n - first) % step == 0
