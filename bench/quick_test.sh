#!/bin/sh
# The benchmark's smoke test: rfd-bench --quick completes and writes valid JSON.
# Nothing about the figures is checked.
# Usage: quick_test.sh RFD_BENCH JSON_OUT
set -eu
bench=$1
json=$2
rm -f "$json"
"$bench" --quick --json "$json" >/dev/null
python3 -c '
import json, sys
with open(sys.argv[1]) as f:
    doc = json.load(f)
assert doc["program"] == "rfd-bench", "not rfd-bench output"
assert isinstance(doc["results"], list) and doc["results"], "no results"
print("rfd-bench --quick: %d figures, valid JSON" % len(doc["results"]))
' "$json"
