#!/usr/bin/env python3
"""Prints the slowest tests of the last `make cargo-test` (nextest's JUnit report) and pytest
runs (their --junitxml reports): `scripts/slowest-tests.py [N]`."""
import glob
import sys
import xml.etree.ElementTree as ET

n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
rows = []
for path in glob.glob("target/nextest/default/junit.xml") + glob.glob("target/junit-*.xml"):
    for case in ET.parse(path).getroot().iter("testcase"):
        rows.append((float(case.get("time") or 0), case.get("classname", ""), case.get("name", "")))
rows.sort(reverse=True)
print(f"== the {min(n, len(rows))} slowest of {len(rows)} tests ==")
for secs, cls, name in rows[:n]:
    print(f"{secs:8.1f} s  {cls} {name}")
