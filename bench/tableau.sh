#!/usr/bin/env bash
# bench/tableau.sh: Tableau conformance, for BENCHMARKS.md's targets. Runs TDVT's standard
# expression tests through the Tableau connector's dialect.tdd on a real stockflight-server and
# the Flight SQL JDBC driver (clients/tableau/conformance/run; dev/test runs the same with
# --check) and writes bench/results/tableau.md and bench/results/tableau.summary. The details
# and the remaining failures are in CONFORMANCE.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
cargo build -q -p stockflight-server
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clients/tableau/conformance/run --out "$out" >/dev/null
report=$out/conformance.md
overall=$(sed -n 's/^\*\*Overall: \([0-9]*\) of \([0-9]*\) pass (\([0-9.]*\)%).*/\1 \2 \3/p' "$report")
read -r passed total percent <<<"$overall"
[ -n "$total" ] || { echo "bench/tableau.sh: no overall line in $report" >&2; exit 1; }
# The target: >= 95% overall and in every category.
lowest=$(awk -F'|' '/^\| [a-z_]+ \| [0-9]/ && !done {gsub(/[ %]/, "", $7); if (min == "" || $7 + 0 < min) min = $7 + 0} /^$/ && min != "" {done = 1} END {print min}' <(sed -n '/^| category/,/^$/p' "$report"))
met=no
awk -v p="$percent" -v l="$lowest" 'BEGIN {exit !(p >= 95 && l >= 95)}' && met=yes
{
  echo "# Tableau conformance"
  echo
  echo "Command: \`bench/tableau.sh\` (\`clients/tableau/conformance/run\`), run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores. Details and remaining failures: [CONFORMANCE.md](CONFORMANCE.md)."
  echo
  sed -n '/^| category/,/^$/p' "$report"
} >bench/results/tableau.md
echo "| tableau | TDVT standard expression tests through the connector's dialect, real server and JDBC driver; lowest category ${lowest}% ([CONFORMANCE.md](CONFORMANCE.md)) | $passed / $total (${percent}%) | >= 95% in every category | $met |" \
  >bench/results/tableau.summary
cat bench/results/tableau.summary
