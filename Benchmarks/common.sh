# Sourced by the benchmark scripts: one place that says which build they use.
#   CONFIG   release (default; the only figures worth quoting) or debug (Benchmarks/run.sh --tiny in CI reuses the
#            debug build `swift test` made, so the benchmarks are checked without a second full build)
#   SCRATCH  build directory (default .build, shared with `swift build`)
#   BIN      where the built executables are (derived)
#   --tiny   (the sourcing script's first argument) sets $tiny and makes debug the default CONFIG
tiny=false
[ "${1:-}" = "--tiny" ] && tiny=true
if $tiny; then export CONFIG=${CONFIG:-debug}; fi
CONFIG=${CONFIG:-release}
SCRATCH=${SCRATCH:-.build}
BIN="$SCRATCH/$CONFIG"

# build_products PRODUCT... : builds the named products quietly, showing the compiler's output only on failure.
build_products() {
    local product log
    log=$(mktemp)
    for product in "$@"; do
        swift build -c "$CONFIG" --scratch-path "$SCRATCH" --product "$product" >"$log" 2>&1 || {
            cat "$log" >&2; rm -f "$log"; echo "build of $product failed" >&2; return 1; }
    done
    rm -f "$log"
}
