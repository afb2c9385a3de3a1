"""Kernel modules: which the workload loaded compared with the default system (ELISA's table), and what is
built in or loadable according to the kernel config.

  kprof modules                                  this machine: loaded modules now, kernel config summary
  kprof modules --trace trace.txt                a kprof recording: /proc/modules before vs during it
  kprof modules --default lsmod-idle.txt --workload lsmod-openaps.txt   two lsmod (or /proc/modules) files,
                                                 e.g. taken on the rig as ELISA did
  --config FILE / --builtin FILE                 the rig's kernel config / modules.builtin"""
from __future__ import annotations

from pathlib import Path

from profiler.commands.pipeline import ReportCommand


class Modules(ReportCommand):
    def add_input_arguments(self, p) -> None:
        p.add_argument("--trace", type=Path, metavar="TRACE", help="a trace recorded by kprof ftrace record: use the "
                       "/proc/modules snapshots written next to it")
        p.add_argument("--default", type=Path, metavar="FILE", help="lsmod output or /proc/modules of the default "
                       "system (no workload)")
        p.add_argument("--workload", type=Path, metavar="FILE", help="lsmod output or /proc/modules while the workload "
                       "runs (default: this machine now)")
        p.add_argument("--config", type=Path, metavar="FILE", help="kernel config (.config or config.gz; default: this "
                       "kernel's, or the one saved with --trace)")
        p.add_argument("--builtin", type=Path, metavar="FILE", help="modules.builtin of the kernel (default: "
                       "/lib/modules/RELEASE/modules.builtin)")

    def read(self, args):
        """The report itself: what was read (snapshots, config, modules.builtin) is its facts and warnings."""
        from profiler.errors import KprofError
        from profiler.kernel import modules as km
        from profiler.record.ftrace import load_meta, sidecar
        from profiler.render.model import Report, Section

        report = Report("kprof modules")
        here = args.trace is None and args.default is None and args.workload is None
        config_path = str(args.config) if args.config else None
        release = None
        workload = default = None
        w_where = d_where = None
        if args.trace is not None:
            meta = load_meta(args.trace)
            if meta is None:
                raise KprofError(f"{args.trace}: no {args.trace}.meta.json: --trace needs a trace recorded by kprof ftrace "
                                 f"record (else give --default and --workload files)")
            release = meta.get("kernel_release")
            report.facts.append(("recording", f"{args.trace}: Linux {release} on {meta.get('hostname')}, "
                                              f"{' '.join(meta['command']) if meta.get('command') else 'whole system'}"))
            mods = meta.get("modules") or {}
            if mods.get("before") is None:
                report.warnings.append(f"no module snapshots with this recording: {mods.get('note') or 'not taken'}")
            else:
                default, d_where = km.read_modules(str(sidecar(args.trace, "modules-before")))
                if mods.get("during"):
                    workload, w_where = km.read_modules(str(sidecar(args.trace, "modules-during")))
                    w_where += f" ({mods.get('during_at_s')} s into the recording)"
                else:
                    report.warnings.append("no snapshot was taken during the recording (it was shorter than a second)")
            if not config_path and (meta.get("kernel_config") or {}).get("copy"):
                config_path = str(sidecar(args.trace, "config"))
        if args.default is not None:
            default, d_where = km.read_modules(str(args.default))
        if args.workload is not None:
            workload, w_where = km.read_modules(str(args.workload))
        elif args.default is not None or here:
            workload, w_where = km.read_modules()
            if workload is None:
                report.warnings.append(w_where)
                w_where = None

        config = km.read_config(config_path, release)
        if config.readable:
            c = config.counts()
            mod = config.options.get("CONFIG_MODULES")
            report.facts.append(("kernel config", f"{config.source}: {c['built in (=y)']} options built in (=y), "
                                                  f"{c['loadable (=m)']} loadable (=m); CONFIG_MODULES="
                                                  f"{mod if mod and mod != 'n' else 'not set'}"))
            if mod != "y":
                report.facts.append(("loadable modules", "none: CONFIG_MODULES is not set, every driver this kernel has "
                                                         "is built in, and lsmod shows nothing"))
        else:
            report.warnings.append(config.note)
        builtin, b_where = km.read_builtin(str(args.builtin) if args.builtin else None, release)
        if builtin is None and (config.modules_supported is not False):
            report.warnings.append(f"which modules are built in is not known: {b_where}")

        def kind(name: str) -> str:
            if workload and name in workload or default and name in default:
                return "loadable (loaded)"
            if builtin is not None and km.normalise(name) in builtin:
                return "built in (modules.builtin)"
            if config.modules_supported is False:
                return "built in or absent (no module support)"
            return "not known"

        if default is not None and workload is not None:
            report.facts.append(("default", d_where))
            report.facts.append(("workload", w_where))
            rows = km.module_table(workload, default)
            report.sections.append(Section("Modules: workload vs default system (ELISA's table)",
                                           ["module", "workload", "default", "change", "kind"],
                                           [r + [kind(r[0])] for r in rows],
                                           "Use count, with the modules using it in brackets; 'not loaded' where it "
                                           "is not in the list."))
        elif workload is not None:
            report.facts.append(("loaded now", w_where))
            report.sections.append(Section("Loaded modules", ["module", "use count", "size", "state"],
                                           [[m.name, km.use_text(m), m.size, m.state or ""]
                                            for m in sorted(workload.values(), key=lambda m: m.name)]))
        if builtin is not None:
            report.facts.append(("built in", f"{len(builtin)} modules in {b_where}"))
        return report

    def build(self, args, report):
        return report


COMMAND = Modules()
add_arguments, main = COMMAND.add_arguments, COMMAND.main
