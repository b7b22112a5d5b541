#!/usr/bin/env bash
# Run SyTest against this homeserver.
#
#   sytest-compat/run.sh SYTEST_CHECKOUT [TEST_PATHS...]
#
# SYTEST_CHECKOUT is a checkout of matrix-org/sytest (pinned: see SYTEST_COMMIT below); nothing
# is installed into it. TEST_PATHS (e.g. tests/10apidoc) limit the run; by default every test
# runs. Writes the TAP output to $SYTEST_TAP (default sytest-compat/out/results.tap), SyTest's
# progress log next to it (results.log), and prints the pass counts per area. Then checks the
# ratchet: a whitelisted test that failed, or a passing test missing from sytest-whitelist,
# makes the exit status 1. The homeservers' directories (with homeserver.log) stay in
# work/ next to the TAP file until the next run.
#
# Environment: SYTEST_PERL5LIB (Perl stand-ins for modules Debian lacks; default
# ../shared/sytest/perl5lib next to the checkout), PYTHON (default: python3), SYTEST_ARGS
# (extra arguments for run-tests.pl).
set -euo pipefail

SYTEST_COMMIT=404d274c64825281086ef3d186f225bbc46e0605
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(dirname "$here")"

if [ $# -lt 1 ] || [ ! -f "$1/run-tests.pl" ]; then
    echo "usage: $0 SYTEST_CHECKOUT [TEST_PATHS...]" >&2
    exit 2
fi
sytest="$(cd "$1" && pwd)"
shift

actual="$(git -C "$sytest" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$actual" != "$SYTEST_COMMIT" ]; then
    echo "warning: SyTest is at $actual; the whitelist was recorded at $SYTEST_COMMIT" >&2
fi

tap="${SYTEST_TAP:-$here/out/results.tap}"
mkdir -p "$(dirname "$tap")"
log="${tap%.tap}.log"
python="$(${PYTHON:-python3} -c 'import sys; print(sys.executable)')"
perl5lib="${SYTEST_PERL5LIB:-$project/../shared/sytest/perl5lib}"
plugins="$here/plugins"
# The homeservers' directories (configs, logs, databases) are kept until the next run, for
# reading after a failure. SyTest resolves them with abs_path, so they must exist beforehand.
workdir="$(dirname "$tap")/work"
rm -rf "$workdir"
mkdir -p "$workdir/server-0" "$workdir/server-1"

cleanup() {
    # SyTest does not stop its homeservers when it is killed itself: reap any left behind.
    pkill -INT -f "homeserver --config $workdir" 2>/dev/null || true
}
trap cleanup EXIT

cd "$sytest"
# run-tests.pl takes test files, not folders: expand folders into their files, in order.
files=()
for path in "$@"; do
    if [ -d "$path" ]; then
        while IFS= read -r file; do files+=("$file"); done < <(find "$path" -name '*.pl' | sort)
    else
        files+=("$path")
    fi
done
status=0
SYTEST_PLUGINS="$plugins" \
PERL5LIB="$plugins/pyhomeserver/lib:$perl5lib${PERL5LIB:+:$PERL5LIB}" \
    ./run-tests.pl -I PyHomeserver --python "$python" -d "$project" \
        --work-directory "$workdir" --room-version 10 -O tap \
        -W "$here/sytest-whitelist" ${SYTEST_ARGS:-} "${files[@]}" > "$tap" 2> "$log" || status=$?

"$python" "$here/summary.py" "$tap" "$log" "$here/sytest-whitelist" || status=1
exit $status
