"""Write a new scenario skeleton, commented, that validates and runs as it is: edit the command,
fixtures and expectations, then `kprof run scenarios/NAME.yaml`. See docs/adding-a-scenario.md."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

TEMPLATE = """\
# yaml-language-server: $schema={schema}
# A kprof scenario: one OpenAPS command, run under strace in a fresh temporary directory.
# Every key is described in profiler/schema/scenario.schema.json; check this file with
#   kprof validate {path}
name: {name}
description: >
  {description}
# argv list; the first word is looked up on PATH (node_modules/.bin first, so oref0-* commands work)
command: {command}
# files or directories (relative to this file) copied into the working directory, e.g.
# fixtures: fixtures/oref0-examples
# untraced set-up steps (sh -c) run in the working directory before the command, e.g.
# prepare: ["echo '[]' > ns-entries.json"]
env:
  TZ: UTC
timeout: 60
# network: none (default) runs the command in its own network namespace with loopback only
requires: {requires}
expect:
  exit: 0
{expect_output}"""

# OpenAPS commands often exit 0 when their input files are missing (they print an error): a skeleton whose
# command names input files must not pass before its fixtures and expected output are filled in
_UNEDITED = """\
  # the command names input files ({files}): put them in fixtures, then say what the command prints when
  # it worked. Until this line is edited, runs are NOT as expected (the files are missing, it did not work).
  stdout_contains: 'TODO: a line the command prints when it worked'
"""
_OPTIONAL = "  # stdout_contains: 'a line the command prints when it worked'\n"


def add_arguments(p) -> None:
    p.add_argument("name", help="scenario name: lower-case letters, digits and dashes (the file is NAME.yaml)")
    p.add_argument("--command", nargs=argparse.REMAINDER, metavar="WORD", help="the command and its arguments, "
                   "dash arguments included: give it last (e.g. --command stress-ng --netdev 1; default: "
                   "oref0-determine-basal --help)")
    p.add_argument("--description", default="TODO: which OpenAPS command this is and what it does on a rig.")
    p.add_argument("--dir", type=Path, default=Path("scenarios"), help="where to write it (default scenarios/)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def main(args) -> int:
    import re

    from profiler.errors import KprofError
    from profiler.scenario import load_scenario

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", args.name):
        raise KprofError(f"scenario name {args.name!r}: use lower-case letters, digits and dashes (e.g. pump-clock)")
    path = args.dir / f"{args.name}.yaml"
    if path.exists() and not args.force:
        raise KprofError(f"{path} exists already (use --force to overwrite it)")
    command = list(args.command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    if args.command is not None and not command:
        raise KprofError("--command: give the command and its arguments after it (last on the line)")
    command = command or ["oref0-determine-basal", "--help"]
    own = [w for w in command[1:] if w.split("=")[0] in ("--dir", "--description", "--force")]
    if own:
        import sys
        print(f"kprof: note: {', '.join(own)} after --command is part of the command (put kprof's options "
              f"before --command)", file=sys.stderr)
    requires = ["node"] if command[0].startswith("oref0") else []
    from profiler.outfiles import output_dir, write_atomic
    output_dir(args.dir, bundle=False)
    import os

    from profiler.scenario import SCHEMA_PATH
    schema = os.path.relpath(SCHEMA_PATH, args.dir.resolve())
    files = [w for w in command[1:] if not w.startswith("-") and re.fullmatch(r"[\w./-]+\.(json|csv|txt)", w)]
    expect_output = _UNEDITED.format(files=", ".join(files)) if files else _OPTIONAL
    write_atomic(path, TEMPLATE.format(schema=schema, path=path, name=args.name, description=args.description,
                                       command=json.dumps(command), requires=json.dumps(requires),
                                       expect_output=expect_output))
    load_scenario(path)  # what we write must validate
    print(f"wrote {path}: edit it, then run: kprof run {path}")
    return 0
