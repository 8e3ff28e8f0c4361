#!/usr/bin/env bash
# Checks every Prometheus rule file of the repo:
#   1. promtool check rules rules/*.rules.yml     (syntax, PromQL, templates)
#   2. promtool test rules rules/tests/*.test.yml (the unit tests)
#   3. every alert has a `severity` label and `summary` + `description` annotations, and is
#      named in some `alertname:` of rules/tests/*.test.yml (each alert is unit-tested).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
command -v promtool >/dev/null || { echo "check-rules: promtool missing; run scripts/install-deps.sh prom" >&2; exit 1; }
shopt -s nullglob
rules=(rules/*.rules.yml)
tests=(rules/tests/*.test.yml)
[ ${#rules[@]} -gt 0 ] || { echo "check-rules: no rules/*.rules.yml" >&2; exit 1; }
rc=0
echo "promtool check rules ${rules[*]}"
promtool check rules "${rules[@]}" || rc=1
if [ ${#tests[@]} -gt 0 ]; then
  echo "promtool test rules ${tests[*]}"
  # (rule_files in a test file resolve relative to that test file)
  promtool test rules "${tests[@]}" || rc=1
else
  echo "check-rules: no rules/tests/*.test.yml" >&2; rc=1
fi
python3 - "${rules[@]}" -- "${tests[@]}" <<'PY' || rc=1
"""Alert hygiene: labels/annotations present, every alert named by a unit test."""
import re, sys
args = sys.argv[1:]
sep = args.index("--")
rule_files, test_files = args[:sep], args[sep + 1:]
tested = set()
for f in test_files:
    tested |= set(re.findall(r"alertname:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)", open(f).read()))
bad = 0
for f in rule_files:
    lines = open(f).read().splitlines()
    # Split into rule blocks at "- alert:" / "- record:" items.
    starts = [i for i, l in enumerate(lines) if re.match(r"\s*-\s+(alert|record):", l)]
    for n, i in enumerate(starts):
        block = lines[i:(starts[n + 1] if n + 1 < len(starts) else len(lines))]
        m = re.match(r"\s*-\s+alert:\s*['\"]?([A-Za-z0-9_]+)", block[0])
        if not m:
            continue
        name, text = m.group(1), "\n".join(block)
        for what, pat in (("label severity", r"\n\s+severity:\s*\S"),
                          ("annotation summary", r"\n\s+summary:\s*\S"),
                          ("annotation description", r"\n\s+description:\s*\S")):
            if not re.search(pat, text):
                print(f"{f}: alert {name} has no {what}"); bad += 1
        if name not in tested:
            print(f"{f}: alert {name} is not tested in rules/tests/*.test.yml"); bad += 1
if bad:
    sys.exit(1)
print(f"alert hygiene: OK ({', '.join(rule_files)})")
PY
exit $rc
