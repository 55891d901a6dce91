#!/usr/bin/env bash
# bench/fuzz.sh: hostile input, measured. Coverage-guided fuzzing (cargo-fuzz, libFuzzer,
# AddressSanitizer, debug assertions and overflow checks on) of what ingest does to every Kafka
# record: `stockflight_ingest::decode::decode` (protobuf or JSON by content-type, then
# `stockflight_proto::validate`) and the clock guard, asserting the invariants of
# fuzz/src/lib.rs on every input. Each target in fuzz/fuzz_targets runs for FUZZ_SECONDS from its
# seed corpus (fuzz/corpus/<target>, written by fuzz/seeds.py); writes bench/results/fuzz.md and
# bench/results/fuzz.summary. Exits non-zero if any input crashed (panic, failed invariant,
# sanitizer report, timeout, OOM) and names the reproducers (fuzz/artifacts/<target>/).
#
# Needs a nightly toolchain (uses `nightly` if rustup has it, else installs it with
# `rustup toolchain install nightly --profile minimal`, else falls back to the stable toolchain
# with RUSTC_BOOTSTRAP=1) and cargo-fuzz (installed from crates.io if missing).
#
# Knobs: FUZZ_SECONDS (300, per target), FUZZ_TARGETS ("decode decode_json"),
#        FUZZ_TARGET_DIR (default ${CARGO_TARGET_DIR:-~/.cache/stockflight/target}-fuzz),
#        FUZZ_KEEP_CORPUS (0: each run starts from the seeds alone; 1: continue the grown corpus
#        kept in ~/.cache/stockflight/fuzz/<target>).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
FUZZ_SECONDS=${FUZZ_SECONDS:-300}
FUZZ_TARGETS=${FUZZ_TARGETS:-decode decode_json}
FUZZ_KEEP_CORPUS=${FUZZ_KEEP_CORPUS:-0}
cache=${STOCKFLIGHT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight}
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$cache/target}-fuzz}
work=$cache/fuzz
out=$root/bench/results/fuzz.md
mkdir -p "$work"

say() { printf '[fuzz] %s\n' "$*" >&2; }

# A nightly toolchain: cargo-fuzz passes -Z flags (sanitizers, sancov) to rustc.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  cargo_fuzz=(cargo +nightly fuzz)
elif command -v rustup >/dev/null && rustup toolchain install nightly --profile minimal >&2; then
  cargo_fuzz=(cargo +nightly fuzz)
else
  say "no nightly toolchain (offline?): using the stable one with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  cargo_fuzz=(cargo fuzz)
fi
if [[ ${cargo_fuzz[1]} == +nightly ]]; then
  toolchain="nightly ($(rustc +nightly -V))"
else
  toolchain="stable with RUSTC_BOOTSTRAP=1 ($(rustc -V))"
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fuzz_version=$(cargo fuzz --version 2>/dev/null | awk '{ print $NF }')

say "building the fuzz targets ($toolchain, target dir $target_dir)"
"${cargo_fuzz[@]}" build --target-dir "$target_dir" >&2

final_stat() { awk -v k="stat::$2:" '$1 == k { print $2 }' "$1" | tail -1; } # final_stat LOG NAME
field() { # field LINE NAME: the value after NAME: in a libFuzzer status line
  awk -v n="$2:" '{ for (i = 1; i < NF; i++) if ($i == n) { print $(i + 1); exit } }' <<<"$1"
}

rows=
total_runs=0
total_crashes=0
crash_notes=
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for t in $FUZZ_TARGETS; do
  corpus=$work/$t/corpus
  [[ $FUZZ_KEEP_CORPUS == 1 ]] || rm -rf "$corpus"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  log=$work/$t/fuzz.log
  marker=$work/$t/started
  touch "$marker"
  extra=()
  [[ $t == decode_json ]] && extra+=("-dict=fuzz/json.dict")
  say "fuzzing $t for $FUZZ_SECONDS s (log: $log)"
  # New inputs go to the first corpus directory (outside the clone); the seeds stay as they are.
  # A crash stops the target's run: libFuzzer writes the input to fuzz/artifacts/<target>/.
  set +e
  "${cargo_fuzz[@]}" run --target-dir "$target_dir" "$t" "$corpus" "fuzz/corpus/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -max_len=4096 "${extra[@]}" >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE|NEW|REDUCE|pulse)' "$log" | tail -1 >&2 || true

  inited=$(grep -E '^#[0-9]+[[:space:]]+INITED' "$log" | tail -1 || true)
  last=$(grep -E '^#[0-9]+[[:space:]]+(INITED|NEW|REDUCE|pulse|DONE)' "$log" | tail -1 || true)
  runs=$(final_stat "$log" number_of_executed_units); runs=${runs:-0}
  eps=$(final_stat "$log" average_exec_per_sec); eps=${eps:-0}
  rss=$(final_stat "$log" peak_rss_mb)
  seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  mapfile -t crashes < <(find "fuzz/artifacts/$t" -type f -newer "$marker" | sort)
  if [[ $rc != 0 && ${#crashes[@]} == 0 ]]; then
    say "libFuzzer failed on $t without a reproducer (exit $rc):"; tail -40 "$log" >&2; exit 1
  fi
  total_runs=$((total_runs + runs))
  total_crashes=$((total_crashes + ${#crashes[@]}))
  case $t in
    decode) input="first byte picks the content-type (none, x-protobuf, protobuf, JSON, JSON with charset, CSV, empty, or one read from the input), the rest is the value" ;;
    decode_json) input="the whole input is the value, \`content-type: application/json\`; dictionary \`fuzz/json.dict\`" ;;
    *) input="see \`fuzz/fuzz_targets/$t.rs\`" ;;
  esac
  rows+="| \`$t\` | $input | ${seconds:-?} | **$runs** | $eps | $(field "$last" corp) | $(field "$inited" cov) / $(field "$inited" ft) | **$(field "$last" cov)** / $(field "$last" ft) | ${rss:-?} MB | **${#crashes[@]}** |"$'\n'
  for c in "${crashes[@]}"; do
    panic=$(grep -m1 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" || true)
    message=$(grep -A2 -m1 "panicked at" "$log" | sed -n 2,3p | grep -v -E '^(stack backtrace|note):' | tr '\n' ' ' || true)
    crash_notes+="- \`$c\` ($t): ${panic} ${message}"$'\n'"  input (hex): \`$(head -c 2048 "$c" | od -An -v -tx1 | tr -d ' \n')\`"$'\n'
    say "CRASH in $t: $c"; say "  $panic $message"
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
n_targets=$(wc -w <<<"$FUZZ_TARGETS")

{
  cat <<MD
# Fuzzing: hostile input

Command: \`bench/fuzz.sh\` (FUZZ_SECONDS=$FUZZ_SECONDS per target, FUZZ_KEEP_CORPUS=$FUZZ_KEEP_CORPUS), run $(date -u +%Y-%m-%dT%H:%MZ).
Toolchain: $toolchain, cargo-fuzz $fuzz_version; libFuzzer, AddressSanitizer, debug assertions and
overflow checks on, one fuzzing process at a time.

Machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; load average $load_start at the
start, $load_end at the end (whatever else ran on the machine shares its cores: exec/s is a lower bound).

What runs: \`stockflight_ingest::decode::decode\`, the function ingest calls on every Kafka record
(protobuf, or JSON by content-type, then \`stockflight_proto::validate\`), then the clock guard
(\`stockflight_ingest::guard::ClockGuard::check\`) on what it accepts. Every input is checked against
the invariants of \`fuzz/src/lib.rs\`, not only for panics: an accepted update passes \`validate\` and
the \`.proto\` rules, its protobuf re-encoding decodes to the same update (and re-encodes to the same
bytes), its JSON re-encoding decodes to the same update, and the guard refuses it exactly when its
event time is out of bounds; a rejection has a non-empty reason and the right documented kind
(\`empty\`, \`content_type\`, \`protobuf\`/\`json\` only when the bytes do not parse, \`invalid\` only
when they parse and \`validate\` refuses them, with its message). Each target starts from its seed
corpus \`fuzz/corpus/<target>\` (valid updates in both encodings and a few rejections, \`fuzz/seeds.py\`).

| target | input | seconds | inputs tried | exec/s | corpus at end (units/bytes) | coverage of the seeds (cov / ft) | coverage at end (cov / ft) | peak RSS | crashes |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
$rows
Total: **$total_runs inputs** tried in $n_targets x $FUZZ_SECONDS s, **$total_crashes crashes**.

\`cov\` is libFuzzer's count of covered edges of the instrumented code (the decode path and what it
calls: prost, serde_json, the guard's formatting), \`ft\` its finer features (edges by hit count,
comparisons); "of the seeds" is after loading the seed corpus, before any mutation. Reproduce or
minimize a crash with \`cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>\` (or
\`cargo fuzz tmin\`).
MD
  if [[ $total_crashes != 0 ]]; then
    echo
    echo "Crashes (logs in \`$work/<target>/fuzz.log\`):"
    echo
    printf '%s' "$crash_notes"
  fi
} >"$out"
met=yes; [[ $total_crashes == 0 ]] || met="**no**"
cat >"${out%.md}.summary" <<MD
| fuzz | crashes: decode+validate+clock guard, coverage-guided, $n_targets targets x $FUZZ_SECONDS s, $total_runs inputs | $total_crashes crashes | 0 crashes | $met |
MD
say "results in $out"
cat "$out"
[[ $total_crashes == 0 ]] || { say "$total_crashes crashing input(s): see above"; exit 1; }
