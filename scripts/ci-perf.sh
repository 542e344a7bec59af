#!/usr/bin/env bash
# CI performance comparison of two revisions on this machine:
#
#   scripts/ci-perf.sh BASE_REV HEAD_REV [ROUNDS]      (ROUNDS default 5)
#
# 1. Builds both revisions in separate git worktrees (release binaries kept under
#    $PERFLEDGER_CI_DIR/builds/<commit>[-<patch hash>], so repeating a comparison, or an A/A of one
#    revision, never rebuilds; the cargo target directory is shared, so dependencies build once).
# 2. Runs every row of the suite (default `quick`, CPU rows, probes off), one row per process,
#    alternately: in odd rounds base then head, in even rounds head then base (base, head, head,
#    base, ...), so the base and head rounds of a row are adjacent in time and drift between them
#    cancels. The order is recorded in ORDER.tsv beside the run files.
# 3. Compares them: `perfledger compare --paired` (the head build's), writing compare.md (for a CI
#    job summary), compare.json and printing the table. Exits with compare's code: 0 no
#    regression, 1 a regression or a newly incorrect row, 2 bad input or differing configuration.
#
# Environment:
#   PERFLEDGER_CI_SUITE      suite (default quick)
#   PERFLEDGER_CI_RUN_ARGS   extra `run` arguments (default: --backend cpu --probes off)
#   PERFLEDGER_CI_DIR        work directory (default: target/ci-perf in the repository)
#   PERFLEDGER_CI_HEAD_PATCH a patch file applied to the head worktree before building (the power
#                            check of results/ci-perf.md applies scripts/ci-perf/slower-*.patch)
#   PERFLEDGER_CI_COMPARE_ARGS extra `compare` arguments (e.g. --threshold 0.05, --noise FILE)
#   PERFLEDGER_CI_BUILD_ONLY=1 build (or find) both binaries, print their paths and stop
set -euo pipefail

usage() {
  echo "usage: scripts/ci-perf.sh BASE_REV HEAD_REV [ROUNDS]" >&2
  exit 2
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage
ROUNDS=${3:-5}
case "$ROUNDS" in '' | *[!0-9]*) echo "ci-perf: ROUNDS must be a number, got '$ROUNDS'" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] || { echo "ci-perf: ROUNDS must be at least 1" >&2; exit 2; }

REPO=$(git rev-parse --show-toplevel)
cd "$REPO"
SUITE=${PERFLEDGER_CI_SUITE:-quick}
read -r -a RUN_ARGS <<<"${PERFLEDGER_CI_RUN_ARGS:---backend cpu --probes off}"
read -r -a COMPARE_ARGS <<<"${PERFLEDGER_CI_COMPARE_ARGS:-}"
WORK=${PERFLEDGER_CI_DIR:-$REPO/target/ci-perf}
PATCH=${PERFLEDGER_CI_HEAD_PATCH:-}
mkdir -p "$WORK/builds" "$WORK/worktrees" "$WORK/runs"
WORK=$(cd "$WORK" && pwd)
if [ -n "$PATCH" ]; then
  [ -f "$PATCH" ] || { echo "ci-perf: PERFLEDGER_CI_HEAD_PATCH $PATCH: no such file" >&2; exit 2; }
  PATCH=$(cd "$(dirname "$PATCH")" && pwd)/$(basename "$PATCH")
fi

resolve() {
  git rev-parse --verify --quiet "$1^{commit}" || { echo "ci-perf: $1 is not a revision of $REPO" >&2; exit 2; }
}
BASE=$(resolve "$1")
HEAD=$(resolve "$2")

# build COMMIT [PATCH] -> prints the binary's path
build() {
  local commit=$1 patch=${2:-} key=$1
  if [ -n "$patch" ]; then key="$commit-$(sha256sum "$patch" | cut -c1-12)"; fi
  local bin="$WORK/builds/$key/perfledger"
  if [ -x "$bin" ]; then
    echo "ci-perf: reusing the build of $key" >&2
  else
    local wt="$WORK/worktrees/$key"
    rm -rf "$wt"
    git worktree prune
    git worktree add --detach --force "$wt" "$commit" >&2
    if [ -n "$patch" ]; then
      echo "ci-perf: applying $patch to $key" >&2
      git -C "$wt" apply "$patch" >&2
    fi
    echo "ci-perf: building $key (release)" >&2
    (cd "$wt" && CARGO_TARGET_DIR="$WORK/target" cargo build --release --locked --bin perfledger >&2)
    mkdir -p "$WORK/builds/$key"
    cp "$WORK/target/release/perfledger" "$bin.tmp" && mv "$bin.tmp" "$bin"
    git worktree remove --force "$wt" >&2
  fi
  echo "$bin"
}

BASE_BIN=$(build "$BASE")
HEAD_BIN=$(build "$HEAD" "$PATCH")
"$HEAD_BIN" compare --help >/dev/null 2>&1 || { echo "ci-perf: the head build has no compare command" >&2; exit 2; }
if [ -n "${PERFLEDGER_CI_BUILD_ONLY:-}" ]; then
  printf 'base %s\nhead %s\n' "$BASE_BIN" "$HEAD_BIN"
  exit 0
fi

# A base from before `run --idle-workers` (its pool's workers sleep between a row's calls, and its
# run files read as `sleep`): the head runs with `--idle-workers sleep` too, so both sides measure
# the code under the same conditions and compare sees one configuration.
HEAD_RUN_ARGS=()
HEAD_HELP=$("$HEAD_BIN" run --help 2>/dev/null || true)
BASE_HELP=$("$BASE_BIN" run --help 2>/dev/null || true)
if [[ $HEAD_HELP == *--idle-workers* && $BASE_HELP != *--idle-workers* &&
  " ${RUN_ARGS[*]} " != *" --idle-workers "* ]]; then
  HEAD_RUN_ARGS=(--idle-workers sleep)
  echo "ci-perf: the base build predates --idle-workers (its workers sleep); the head runs with --idle-workers sleep" >&2
fi

# The rows: (case, kernel id) of both builds' plans, each once, in plan order.
plan_rows() {
  "$1" run --suite "$SUITE" "${RUN_ARGS[@]}" --plan 2>/dev/null |
    awk '$1 ~ /^[0-9]+$/ && NF >= 4 { print $2 "\t" $3 }'
}
ROWS=$( { plan_rows "$BASE_BIN"; plan_rows "$HEAD_BIN"; } | awk '!seen[$0]++')
NROWS=$(printf '%s\n' "$ROWS" | grep -c . || true)
[ "$NROWS" -gt 0 ] || { echo "ci-perf: the suite $SUITE has no rows with ${RUN_ARGS[*]}" >&2; exit 2; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$WORK/runs/$STAMP-${BASE:0:10}-${HEAD:0:10}"
mkdir -p "$OUT/base" "$OUT/head"
printf 'round\tstep\tside\tcase\tkernel\tfile\n' >"$OUT/ORDER.tsv"
echo "ci-perf: base ${BASE:0:12}, head ${HEAD:0:12}${PATCH:+ + $(basename "$PATCH")}; $NROWS rows x $ROUNDS rounds x 2 sides of suite $SUITE (${RUN_ARGS[*]}); run files in $OUT" >&2

run_one() { # side bin round index case kernel
  local side=$1 bin=$2 round=$3 i=$4 case=$5 kernel=$6
  local file
  file="$OUT/$side/r$(printf %02d "$round")-$(printf %03d "$i").json"
  local extra=()
  [ "$side" = head ] && extra=("${HEAD_RUN_ARGS[@]}")
  "$bin" run --suite "$SUITE" "${RUN_ARGS[@]}" "${extra[@]}" --case "$case" --kernel "$kernel" --out "$file" >/dev/null 2>"$file.log" || {
    local rc=$?
    # Exit 1 is a row that failed (incorrect, error): the file says so and compare reports it.
    [ "$rc" -eq 1 ] && [ -f "$file" ] || { echo "ci-perf: $side run of $case $kernel failed (exit $rc): $file.log" >&2; exit 2; }
  }
  STEP=$((STEP + 1))
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$STEP" "$side" "$case" "$kernel" "${file#"$OUT"/}" >>"$OUT/ORDER.tsv"
}

STEP=0
START=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
  i=0
  while IFS=$'\t' read -r case kernel; do
    i=$((i + 1))
    if [ $((round % 2)) -eq 1 ]; then
      run_one base "$BASE_BIN" "$round" "$i" "$case" "$kernel"
      run_one head "$HEAD_BIN" "$round" "$i" "$case" "$kernel"
    else
      run_one head "$HEAD_BIN" "$round" "$i" "$case" "$kernel"
      run_one base "$BASE_BIN" "$round" "$i" "$case" "$kernel"
    fi
  done <<<"$ROWS"
  echo "ci-perf: round $round of $ROUNDS done ($(($(date +%s) - START)) s)" >&2
done

# Files in (round, row) order on both sides: the i-th round of a row pairs with the i-th.
mapfile -t BASE_FILES < <(ls "$OUT"/base/r*.json | sort)
mapfile -t HEAD_FILES < <(ls "$OUT"/head/r*.json | sort)
set +e
"$HEAD_BIN" compare --paired "${COMPARE_ARGS[@]}" --base "${BASE_FILES[@]}" --candidate "${HEAD_FILES[@]}" --format json --out "$OUT/compare.json"
"$HEAD_BIN" compare --paired "${COMPARE_ARGS[@]}" --base "${BASE_FILES[@]}" --candidate "${HEAD_FILES[@]}" --format md --out "$OUT/compare.md"
"$HEAD_BIN" compare --paired "${COMPARE_ARGS[@]}" --base "${BASE_FILES[@]}" --candidate "${HEAD_FILES[@]}"
RC=$?
set -e
echo "ci-perf: $((STEP)) runs in $(($(date +%s) - START)) s; run files, ORDER.tsv, compare.md and compare.json in $OUT (exit $RC)" >&2
echo "$OUT" >"$WORK/LAST"
exit $RC
