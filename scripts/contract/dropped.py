"""Counts the failures hooks.py dropped, by reason, error code and operation."""

import collections
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
counts = collections.Counter((r["reason"], r["error_code"], r["operation"]) for r in rows)
for (reason, code, op), n in sorted(counts.items()):
    print(f"  {reason}, {code}, {op}: {n}")
print(f"  {len(rows)} in all")
