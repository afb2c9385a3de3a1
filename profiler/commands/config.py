"""The static view: which kernel configuration (Kconfig symbols of Linux {KERNEL_VERSION}) a footprint needs, each with
why (syscall / ioctl / device → kernel file → Kconfig condition, with its depends on), built in vs can be a
module, as a table or a .config fragment; and whether a kernel config provides it.

    kprof config kprof-results/determine-basal-*/                 what the command needs
    kprof config RESULT --check /proc/config.gz                   per symbol: present / module / missing
    kprof config RESULT -f config -o openaps.config               a fragment for merge_config.sh
    kprof config RESULT --arch arm                                 for a 32-bit Raspberry Pi OS kernel

RESULT: result bundles, footprint.json files (a whole-workload one too) or baselines; a bundle of several runs
or a baseline gives what any of its runs needed.
Exit status: 0 ok; 1 --check found a needed symbol missing; 2 error (e.g. an unreadable config)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profiler.commands.pipeline import ReportCommand, write_output
from profiler.kernel import KERNEL_VERSION
from profiler.render import FORMATS as REPORT_FORMATS
from profiler.render.model import Report, Section

__doc__ = __doc__.replace("{KERNEL_VERSION}", KERNEL_VERSION)   # the --help text

FORMATS = REPORT_FORMATS + ("config",)
_WHY_SHOWN = 4


def _label(path: Path, meta: dict) -> str:
    return meta.get("scenario") or (path.name if path.is_dir() else path.stem)


def _write(text: str, path: Path | None) -> None:
    from profiler.errors import KprofError, file_error
    try:
        write_output(text, path)
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise KprofError(f"{path}: cannot write: no such directory") from None
        raise file_error(path, e, "a file") from None


def _recorded_only(label: str, fps: list, runs: list[dict], arch: str, uses: list) -> list:
    """A baseline keeps one footprint (run 1's) and, of every run, its measures, which hold the Kconfig conditions
    that run needed on its own arch: a condition another run needed that no use here gives becomes a use of
    its own (the file behind it is not kept), so the view is of all the runs, not of run 1's alone."""
    if len(runs) <= len(fps):
        return []
    from profiler.kernel import kconfig as kc
    if fps[0].arch != arch:      # what the record holds is for the arch the runs were recorded on
        return [kc.Use("run", f"{label + ': ' if label else ''}runs 2-{len(runs)}", None, "", "needs",
                       f"the baseline keeps run 1's footprint only, and the other runs' Kconfig conditions for "
                       f"{fps[0].arch}: what they needed beyond run 1 on {arch} is not known")]
    have = {r.condition for r in kc.requirements(uses) if r.mode != "context"}   # (a one-of: "(A) || B")
    out = []
    for i, run in enumerate(runs, 1):
        for cond in run.get("kconfig", {}):
            if cond not in have:
                have.add(cond)
                out.append(kc.Use("run", f"{label + ': ' if label else ''}run {i}", None, cond, "needs",
                                  f"needed by run {i} of {len(runs)} (the baseline keeps run 1's footprint "
                                  "only: which call needed it is not recorded)"))
    return out


@dataclass
class ConfigReport(Report):
    """The report, and the .config fragment ``-f config`` writes instead of it."""
    fragment: str = ""
    missing: int = 0
    needed: int = 0
    source: str | None = None


class Config(ReportCommand):
    formats = FORMATS
    format_help = "; config = a .config fragment"

    def add_input_arguments(self, p) -> None:
        p.add_argument("results", nargs="+", type=Path, metavar="RESULT",
                       help="result bundle directory, footprint.json (a whole-workload one too) or baseline file")
        p.add_argument("--check", metavar="CONFIG", help="kernel config to check: /proc/config.gz, /boot/config-*, "
                       "a .config (plain or gzip)")
        p.add_argument("--arch", help="target architecture (x86_64, i386, arm, aarch64, riscv64, arm64-compat; "
                       "default: the footprint's)")

    def add_arguments(self, p) -> None:
        super().add_arguments(p)
        p.add_argument("--fragment", type=Path, metavar="FILE", help="also write the .config fragment here")

    def read(self, args):
        """(arch, the config checked or None, (label, run 1's footprint) pairs, uses, requirements, needed,
        fragment, every run's footprint)."""
        from profiler.compare import load_comparable
        from profiler.kernel import kconfig as kc
        from profiler.kernel import modules as km
        from profiler.kernel.syscalls import normalize_arch

        target = normalize_arch(args.arch) if args.arch else None
        config = km.read_config(args.check) if args.check else None    # raises (exit 2) when unreadable
        loaded, every = [], []         # (label, run 1's footprint); (label, every run's footprint, runs' measures)
        for path in args.results:
            runs, fps, meta = load_comparable(path)
            loaded.append((_label(Path(path), meta), fps[0]))
            every.append((loaded[-1][0], list({id(fp): fp for fp in fps}.values()), runs))   # a baseline: one
        arch = target or loaded[0][1].arch
        uses, seen = [], set()
        for label, fps, runs in every:
            for fp in fps:             # a bundle's repeated runs: what any of them used (once)
                for u in kc.footprint_uses(fp, arch):
                    if len(loaded) > 1:
                        u.what = f"{label}: {u.what}"
                    key = (u.kind, u.what, u.file, u.condition, u.mode, u.group)
                    if key not in seen:
                        seen.add(key)
                        uses.append(u)
            uses += _recorded_only(label if len(loaded) > 1 else "", fps, runs, arch, uses)
        reqs = kc.requirements(uses)
        needed = [r for r in reqs if r.mode != "context"]
        frag = kc.fragment(needed, arch)
        if args.fragment:
            _write(frag, args.fragment)
        return arch, config, loaded, uses, reqs, needed, frag, [fp for _, fps, _ in every for fp in fps]

    def build(self, args, model):
        from profiler.kernel import kconfig as kc
        from profiler.kernel import modules as km

        arch, config, loaded, uses, reqs, needed, frag, every_run = model
        if args.format == "config" and not args.check:
            return ConfigReport("", fragment=frag)
        report = ConfigReport("kprof config: " + ", ".join(label for label, _ in loaded), fragment=frag)
        report.facts.append(("arch", arch + ("" if all(fp.arch == arch for _, fp in loaded)
                                             else f" (footprints recorded on {', '.join(sorted({fp.arch for _, fp in loaded}))})")))
        n_y = sum(1 for u in uses if u.condition == "y")
        unexplained = [u for u in uses if not u.condition]
        report.facts.append(("needs", f"{len(needed)} Kconfig conditions ({sum(kc.kind_of(r, arch) == 'tristate' for r in needed)} "
                                      f"can be modules) for {len(uses)} uses; {n_y} uses need only always-built code (y); "
                                      f"{len(unexplained)} {'has' if len(unexplained) == 1 else 'have'} no kernel file "
                                      "(the reason is given)"))
        lacking = sorted({u.what for u in uses if u.kind == "syscall" and u.condition == "n"})
        if lacking:
            report.facts.append((f"not on {arch}", f"{len(lacking)} syscall{'s' if len(lacking) > 1 else ''} the arch lacks or never implements, "
                                                    f"whatever the config: {', '.join(lacking)} (see Syscall availability)"))
        report.facts.append(("kernel", f"Linux {KERNEL_VERSION} Kbuild and Kconfig (../shared/reference/kernel/kconfig); "
                                       "run-time needs (device tree nodes, udev, loaded modules) are not build conditions"))
        loaded_modules = None
        if config is not None:
            report.facts.append(("checked against", config.source))
            if config.source in km.config_candidates():          # this machine's kernel: compare with lsmod's view
                loaded_modules, where = km.read_modules()
                report.facts.append(("loaded modules", where))

        missing = 0
        headers = ["Kconfig condition", "type", "built in / module", "depends on", "subsystem", "why (use → file)"]
        if config is not None:
            headers += ["status", "detail"]
        rows, classes = [], []
        for r in needed:
            kind = kc.kind_of(r, arch)
            mods = kc.module_names(r)
            if r.mode == "one-of":
                where = "one of (the hardware decides)"
            elif kind == "tristate":
                where = "can be a module: " + ", ".join(mods) if mods else "can be a module"
            else:
                where = "built in"
            syms = kc.symbols(kc.parse(r.condition))
            depends = kc.depends_text(kc.symbol_info(syms[0], arch)) if len(syms) == 1 else ""
            by_use: dict[str, list[str]] = {}
            for u in r.uses:
                by_use.setdefault(f"{u.kind} {u.what}", []).append(u.file or "?")
            why = [f"{k} → {', '.join(dict.fromkeys(v))}" for k, v in by_use.items()]
            text = "; ".join(why[:_WHY_SHOWN]) + (f"; +{len(why) - _WHY_SHOWN} more" if len(why) > _WHY_SHOWN else "")
            row = [r.condition, kind, where, depends, kc.subsystem_of(r), text]
            cls = ""
            if config is not None:
                value, detail = kc.check(r, config.options, arch)
                status = kc.STATUS[value]
                if value == 1 and loaded_modules is not None and mods:
                    on = [m for m in mods if km.normalise(m) in {km.normalise(x) for x in loaded_modules}]
                    status += ", loaded" if on else ", not loaded now"
                if value == 0:
                    missing += 1
                    cls = "new"
                row += [status, detail]
            rows.append(row)
            classes.append(cls)
        report.sections.append(Section("Kconfig symbols needed", headers, rows,
                                       "One row per condition (a Kconfig expression; minimal: symbols Kconfig already "
                                       "implies are left out). 'depends on' is the symbol's own and its enclosing if/menu.",
                                       row_classes=classes if config is not None else None))
        if config is not None:
            report.facts.append(("result", f"{missing} of {len(needed)} needed conditions missing" if missing
                                 else f"all {len(needed)} needed conditions present"))
        context = [r for r in reqs if r.mode == "context"]
        if context:
            crow = []
            for r in context:
                notes = sorted({u.note for u in r.uses})
                crow.append([r.condition, ", ".join(kc.module_names(r)), ", ".join(r.files), "; ".join(notes)]
                            + ([kc.STATUS[kc.check(r, config.options, arch)[0]]] if config is not None else []))
            report.sections.append(Section("Not required: platform drivers, and what kprof cannot tell apart",
                                           ["Kconfig condition", "module", "file", "why listed"]
                                           + (["status"] if config is not None else []), crow,
                                           "e.g. the Raspberry Pi's SPI controller behind /dev/spidev0.0; never counted "
                                           "as missing"))
        avail, feats = [], []
        for fp in every_run:
            a, f = kc.availability(fp, arch)
            avail += [x for x in a if x not in avail]
            feats += [x for x in f if x not in feats]
        if config is not None:
            avail = [x + [kc.STATUS[kc.evaluate(kc.parse(x[2]), config.options)] if x[1] == "configurable" else ""]
                     for x in avail]
        report.sections.append(Section(f"Syscall availability on {arch}", ["syscall", "availability", "condition",
                                                                           "source"] + (["status"] if config else []),
                                       avail, "absent = not in the arch's syscall table; never = the arch's table has no "
                                       "working definition (-ENOSYS); configurable = kernel/sys_ni.c can stub it out "
                                       "(COND_SYSCALL); the rest are always there"))
        if feats:
            report.sections.append(Section(f"Documentation/features rows for these syscalls ({arch})",
                                           ["feature", "Kconfig", "status", "syscalls", "why"], feats,
                                           "get_feat list --arch: ok / TODO / N/A / .. (not possible on the hardware)"))
        report.sections.append(Section("Every use → kernel file → condition", ["use", "what", "kernel file", "condition",
                                                                              "source or reason"],
                                       [[u.kind, u.what, u.file or "", u.condition or "(none)",
                                         u.note + (" (not required)" if u.mode == "context" else "")] for u in uses]))
        report.missing, report.needed, report.source = missing, len(needed), config.source if config else None
        return report

    def render(self, report, fmt: str) -> str:
        return report.fragment if fmt == "config" else super().render(report, fmt)

    def write(self, args, text: str) -> None:
        _write(text, args.output)

    def status(self, args, model, report) -> int:
        if report.source is not None and args.format == "config":
            import sys
            sys.stderr.write(f"kprof config: {report.missing} of {report.needed} needed conditions missing in "
                             f"{report.source}\n")
        return 1 if report.missing else 0


COMMAND = Config()
add_arguments, main = COMMAND.add_arguments, COMMAND.main
