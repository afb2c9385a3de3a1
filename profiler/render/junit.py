"""JUnit XML for CI systems: one test suite per scenario, one test case per kind of footprint item.

The XML follows the Jenkins xunit plugin's junit-10 schema (every suite carries name, tests, failures,
errors and time); a scenario that could not be checked at all (no baseline, a damaged one) is one
test case with an <error>, and the other scenarios are still checked and reported.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from profiler.render.base import Renderer


def junit_xml(results: list[tuple[str, object]], title: str = "kprof check") -> str:
    """``results``: (scenario name, its profiler.compare.Diff)."""
    from profiler.compare import CATEGORIES

    suites = ET.Element("testsuites", name=title)
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for scenario, d in results:
        suite = ET.SubElement(suites, "testsuite", name=scenario)
        if d.errors:
            case = ET.SubElement(suite, "testcase", classname=f"kprof.{scenario}", name="baseline", time="0")
            e = ET.SubElement(case, "error", type="kprof.error", message=d.errors[0])
            e.text = "\n".join(d.errors)
            counts = {"tests": 1, "failures": 0, "errors": 1}
        else:
            cats = ("run",) + CATEGORIES
            changes = d.worst_first()
            failed = {c: [ch for ch in changes if ch.category == c] for c in cats}
            for c in cats:
                case = ET.SubElement(suite, "testcase", classname=f"kprof.{scenario}", name=f"{c} footprint",
                                     time="0")
                if failed[c]:
                    msgs = [ch.message for ch in failed[c]]
                    f = ET.SubElement(case, "failure", type=f"kprof.{failed[c][0].kind}",
                                      message=msgs[0] + (f" (+{len(msgs) - 1} more)" if len(msgs) > 1 else ""))
                    f.text = "\n".join(msgs)
            if d.notes:
                ET.SubElement(suite, "system-out").text = "\n".join(d.notes)
            counts = {"tests": len(cats), "failures": sum(1 for c in cats if failed[c]), "errors": 0}
        suite.attrib.update({k: str(v) for k, v in counts.items()}, time=f"{d.seconds:.3f}")
        for k, v in counts.items():
            totals[k] += v
        totals["time"] += d.seconds
    suites.attrib.update({k: str(v) for k, v in totals.items() if k != "time"}, time=f"{totals['time']:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


class JUnitRenderer(Renderer):
    """A comparison report (profiler.render.model.DiffReport) as JUnit XML: its diffs, not its sections."""
    name = "junit"
    output_file_extension = "xml"

    def render(self, report) -> str:
        return junit_xml(report.diffs, report.title)
