"""JUnit XML for CI systems: one test suite per scenario, one test case per kind of footprint item."""
from __future__ import annotations

import xml.etree.ElementTree as ET


def junit_xml(results: list[tuple[str, list]]) -> str:
    """``results``: (scenario name, its changes); each change has .category and .message."""
    from profiler.compare import CATEGORIES

    suites = ET.Element("testsuites", name="kprof check")
    for scenario, changes in results:
        cats = ("run",) + CATEGORIES
        failed = {c: [ch for ch in changes if ch.category == c] for c in cats}
        suite = ET.SubElement(suites, "testsuite", name=scenario, tests=str(len(cats)),
                              failures=str(sum(1 for c in cats if failed[c])))
        for c in cats:
            case = ET.SubElement(suite, "testcase", classname=f"kprof.{scenario}", name=f"{c} footprint")
            if failed[c]:
                msgs = [ch.message for ch in failed[c]]
                f = ET.SubElement(case, "failure", message=msgs[0] + (f" (+{len(msgs) - 1} more)" if len(msgs) > 1
                                                                       else ""))
                f.text = "\n".join(msgs)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
