#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 60), one after another,
# on one core. Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Seeds come from fixtures/fuzz/<target>/ (never written); what the fuzzer learns
# goes to fuzz/corpus/<target>/, crashes to fuzz/artifacts/<target>/, and each run's
# output to fuzz/logs/<target>.log. Exits non-zero if any target found a crash.
set -euo pipefail

seconds="${1:-60}"
shift || true
here="$(cd "$(dirname "$0")" && pwd)"
seeds="$here/../fixtures/fuzz"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(json_requests names checksum)
fi

cd "$here"
mkdir -p logs
cargo +nightly fuzz build >logs/build.log 2>&1 || {
    tail -n 20 logs/build.log >&2
    echo "building the fuzz targets failed" >&2
    exit 2
}
failed=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== $target for ${seconds}s"
    if cargo +nightly fuzz run "$target" "corpus/$target" "$seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 \
        >"logs/$target.log" 2>&1; then
        grep -E '^#[0-9]+.*DONE|^Done|stat::number_of_executed_units|stat::peak_rss' "logs/$target.log" || true
    else
        failed=1
        echo "!! $target found a crash; see fuzz/logs/$target.log and fuzz/artifacts/$target/" >&2
        grep -E 'panicked|ERROR|Test unit written' "logs/$target.log" | head -n 5 >&2 || true
    fi
done
exit "$failed"
