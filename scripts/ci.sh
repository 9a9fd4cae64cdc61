#!/usr/bin/env bash
# The whole test pipeline, as CI runs it (through .ci/run and dev.sh test).
#
# Stages, each stopping the pipeline when it fails:
#   1. build     normal out-of-tree build in build/ + make check
#   2. valgrind  the unit tests under valgrind (memcheck, definite leaks)
#   3. asan      clang ASan+UBSan build in build-asan/ + make check
#   4. fuzz      each libFuzzer target on its seed corpus, then a fixed
#                number of mutations from a fixed seed (reproducible)
#   5. distcheck make distcheck from build/
#
# Both builds are VPATH builds, which automake refuses while the source tree
# itself is configured; in that case (a developer's in-tree build) the
# pipeline runs on a clean copy of the tree instead.  The last line printed
# is always "tests: P passed, F failed" (automake's per-test results plus one
# per valgrind run, fuzz target and distcheck); the exit status is non-zero
# when anything failed.

# The stage functions are only called indirectly, through run_stage.
# shellcheck disable=SC2317
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${KS_JOBS:-2}

PASSED=0
FAILED=0
SKIPPED=0
STAGE_NO=0
STAGE_COUNT=5
SUMMARY=()
TMPDIRS=()

cleanup() {
	local d
	for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do
		rm -rf "$d"
	done
}
trap cleanup EXIT

note() {
	echo "ci: $*"
}

# Prints the tail of every failed test's log below build dir $1.
show_failed_logs() {
	local dir=$1 trs log
	[ -d "$dir" ] || return 0
	while IFS= read -r trs; do
		if grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
			log=${trs%.trs}.log
			echo "----- ${log#"$dir"/} (last 200 lines) -----"
			tail -n 200 "$log" 2>/dev/null
		fi
	done < <(find "$dir" -name '*.trs' | sort)
	if [ -f "$dir/test-suite.log" ]; then
		echo "----- test-suite.log summary -----"
		head -n 12 "$dir/test-suite.log"
	fi
}

# Adds automake's counts from $1/test-suite.log to the totals and stores
# this suite's in SUITE_PASSED / SUITE_FAILED.
count_suite() {
	local log=$1/test-suite.log p f s
	SUITE_PASSED=0
	SUITE_FAILED=0
	[ -f "$log" ] || return 0
	read -r p f s < <(head -n 20 "$log" | awk '
		$1 == "#" && ($2 == "PASS:" || $2 == "XFAIL:") { p += $3 }
		$1 == "#" && ($2 == "FAIL:" || $2 == "XPASS:" || $2 == "ERROR:") { f += $3 }
		$1 == "#" && $2 == "SKIP:" { s += $3 }
		END { print p + 0, f + 0, s + 0 }')
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SKIPPED=$((SKIPPED + s))
	SUITE_PASSED=$p
	SUITE_FAILED=$f
}

# run_stage NAME DESCRIPTION FUNCTION: runs FUNCTION in a subshell with
# `set -e`, timed, and stores its status in STAGE_RC.  Never call it as a
# condition (`if run_stage`): bash ignores `set -e` in that context.
run_stage() {
	local name=$1 desc=$2 fn=$3 start rc secs
	STAGE_NO=$((STAGE_NO + 1))
	echo
	echo "==> [$STAGE_NO/$STAGE_COUNT] $name: $desc"
	start=$SECONDS
	(
		set -e
		"$fn"
	)
	rc=$?
	secs=$((SECONDS - start))
	if [ "$rc" -eq 0 ]; then
		echo "<== [$STAGE_NO/$STAGE_COUNT] $name: passed in ${secs} s"
		SUMMARY+=("$(printf '%-10s passed  %5d s' "$name" "$secs")")
	else
		echo "<== [$STAGE_NO/$STAGE_COUNT] $name: FAILED (status $rc) after ${secs} s"
		SUMMARY+=("$(printf '%-10s FAILED  %5d s' "$name" "$secs")")
	fi
	STAGE_RC=$rc
}

finish() {
	local line
	echo
	echo "==> summary"
	for line in "${SUMMARY[@]+"${SUMMARY[@]}"}"; do
		echo "    $line"
	done
	if [ "$STAGE_NO" -lt "$STAGE_COUNT" ]; then
		echo "    (stopped after stage $STAGE_NO of $STAGE_COUNT)"
	fi
	if [ "$SKIPPED" -gt 0 ]; then
		echo "tests: $PASSED passed, $FAILED failed, $SKIPPED skipped"
	else
		echo "tests: $PASSED passed, $FAILED failed"
	fi
	if [ "$FAILED" -gt 0 ]; then
		exit 1
	fi
	exit 0
}

# A stage that failed without a failed test to show for it (a build error,
# a crash of make) still has to count as a failure.
stage_failed() {
	local counted=${1:-0}
	if [ "$counted" -eq 0 ]; then
		FAILED=$((FAILED + 1))
	fi
	finish
}

# ---- where to build ----------------------------------------------------
ROOT=$SRC
if [ -f "$SRC/config.status" ]; then
	ROOT=$(mktemp -d /tmp/ksockd-ci.XXXXXX)
	TMPDIRS+=("$ROOT")
	note "$SRC is configured in-tree; testing a clean copy in $ROOT"
	tar -C "$SRC" --exclude=./.git --exclude=./build \
		--exclude=./build-asan -cf - . | tar -C "$ROOT" -xf - || {
		note "copying the tree failed"
		stage_failed
	}
	(cd "$ROOT" && make distclean >/dev/null 2>&1) || true
	rm -f "$ROOT/config.status"
fi
BUILD=$ROOT/build
ASAN=$ROOT/build-asan
note "source $ROOT, jobs $JOBS, $(nproc) cores"

# ---- 1. normal build -----------------------------------------------------
stage_build() {
	cd "$ROOT"
	if [ ! -f configure ] || [ configure.ac -nt configure ] ||
		[ Makefile.am -nt configure ]; then
		autoreconf -fi
	fi
	mkdir -p "$BUILD"
	cd "$BUILD"
	if [ ! -f Makefile ] || [ ../configure -nt config.status ]; then
		../configure
	fi
	make -j"$JOBS"
	timeout -k 30 1200 make -j"$JOBS" check
}

rm -f "$BUILD/test-suite.log"
run_stage build "build/: configure, make, make check" stage_build
if [ "$STAGE_RC" -ne 0 ]; then
	count_suite "$BUILD"
	show_failed_logs "$BUILD"
	stage_failed "$SUITE_FAILED"
fi
count_suite "$BUILD"
note "make check: $SUITE_PASSED passed, $SUITE_FAILED failed"

# ---- 2. valgrind on the unit tests ----------------------------------------
stage_valgrind() {
	cd "$BUILD"
	if [ ! -e tests/unit/check_ksockd ]; then
		note "tests/unit/check_ksockd was not built (Check missing?)"
		return 1
	fi
	# Forked processes (the process-model test's master, workers and
	# check child) stay under valgrind and write to the same log: each
	# one's summary counts, not only the exit status of the first.
	CK_FORK=no timeout -k 30 900 ./libtool --mode=execute valgrind \
		--leak-check=full --errors-for-leak-kinds=definite \
		--error-exitcode=1 --log-file="$BUILD/valgrind.log" \
		tests/unit/check_ksockd
	note "$(grep -c 'ERROR SUMMARY' "$BUILD/valgrind.log") processes ran" \
		"under valgrind"
	if grep -E 'ERROR SUMMARY: [1-9]' "$BUILD/valgrind.log"; then
		note "valgrind found errors in a forked process"
		return 1
	fi
}

run_stage valgrind "unit tests under valgrind" stage_valgrind
if [ "$STAGE_RC" -eq 0 ]; then
	PASSED=$((PASSED + 1))
	grep -E 'ERROR SUMMARY|definitely lost' "$BUILD/valgrind.log" || true
else
	echo "----- valgrind.log (last 150 lines) -----"
	tail -n 150 "$BUILD/valgrind.log" 2>/dev/null
	stage_failed
fi

# ---- 3. ASan + UBSan ------------------------------------------------------
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Known leaks in libraries (libconfig 1.5's parser); see the file.
export LSAN_OPTIONS=suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0

# The symbolizer next to clang (llvm-N, for clang-N), else the one on PATH.
find_symbolizer() {
	local cc s
	cc=$(command -v clang 2>/dev/null) || cc=
	s=${cc:+$(dirname "$(readlink -f "$cc")")/llvm-symbolizer}
	if [ -n "$s" ] && [ -x "$s" ]; then
		echo "$s"
	else
		command -v llvm-symbolizer 2>/dev/null
	fi
}

# Suppressions match function names: without a symbolizer the stacks are
# bare addresses, nothing matches, and libconfig's leak (which two seeds
# of fuzz_conf trigger) fails the fuzz stage.  Say so instead, up front.
ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(find_symbolizer || true)}
export ASAN_SYMBOLIZER_PATH

stage_asan() {
	local cflags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined"
	cflags="$cflags -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link"
	if [ ! -x "$ASAN_SYMBOLIZER_PATH" ]; then
		note "no llvm-symbolizer (Debian: llvm-14, see scripts/dev.sh):" \
			"leak suppressions need symbolized stacks"
		return 1
	fi
	note "symbolizer $ASAN_SYMBOLIZER_PATH"
	mkdir -p "$ASAN"
	cd "$ASAN"
	if [ ! -f Makefile ] || [ ../configure -nt config.status ]; then
		../configure CC=clang CFLAGS="$cflags" \
			LDFLAGS="-fsanitize=address,undefined" --enable-fuzzing
	fi
	make -j"$JOBS"
	timeout -k 30 1800 make -j"$JOBS" check
}

rm -f "$ASAN/test-suite.log"
run_stage asan "build-asan/: clang ASan+UBSan, make check" stage_asan
if [ "$STAGE_RC" -ne 0 ]; then
	count_suite "$ASAN"
	show_failed_logs "$ASAN"
	stage_failed "$SUITE_FAILED"
fi
count_suite "$ASAN"
note "make check (ASan+UBSan): $SUITE_PASSED passed, $SUITE_FAILED failed"

# ---- 4. fuzzing -----------------------------------------------------------
# Reproducible: each target replays its seed corpus and then makes a fixed
# number of mutations from a fixed seed, so every run tries the same inputs
# and passes or fails alike, however fast the machine (the counts take
# 30-60 s per target on two cores).  Exploratory fuzzing, with random seeds
# and for longer, is `make fuzz` (README, Testing).
FUZZ_TMP=$(mktemp -d /tmp/ksockd-fuzz.XXXXXX)
TMPDIRS+=("$FUZZ_TMP")
FUZZ_TARGETS=(fuzz_line fuzz_conf fuzz_conf_read fuzz_proxy fuzz_cidr fuzz_buf
	fuzz_http)
FUZZ_SEED=1

fuzz_runs() {
	case $1 in
	fuzz_line) echo 8000000 ;;
	fuzz_conf) echo 120000 ;;
	fuzz_conf_read) echo 30000 ;;
	fuzz_proxy) echo 200000 ;;
	fuzz_cidr) echo 500000 ;;
	fuzz_buf) echo 1000000 ;;
	fuzz_http) echo 1300000 ;;
	esac
}

# fuzz_one TARGET: runs it on a scratch copy of its seed corpus, so the
# corpus in the tree never changes.  The command line is the same wherever
# the tree is (a link to the binary, relative paths): its length shifts
# libFuzzer's heap, and with it the mutations.
fuzz_one() {
	local t=$1 bin=$ASAN/tests/fuzz/$1 seeds corpus a runs start
	corpus=$FUZZ_TMP/$t-corpus
	runs=$(fuzz_runs "$t")
	mkdir -p "$corpus" "$FUZZ_TMP/$t-artifacts"
	ln -sf "$bin" "$FUZZ_TMP/$t"
	for seeds in "$ROOT/tests/fuzz/corpus/$t" \
		"$ROOT/tests/fuzz/corpus/${t#fuzz_}"; do
		if [ -d "$seeds" ]; then
			cp -R "$seeds/." "$corpus/"
			break
		fi
	done
	note "$t: $(find "$corpus" -type f | wc -l) seed inputs, then $runs runs" \
		"in all (-seed=$FUZZ_SEED)"
	if [ ! -x "$bin" ]; then
		note "$bin was not built"
		return 1
	fi
	cd "$FUZZ_TMP"
	start=$SECONDS
	# -reload=0: nothing but this run writes to the corpus.  The per-input
	# -timeout only catches hangs; the outer one a fuzzer that never ends.
	if timeout -k 30 900 "./$t" -seed="$FUZZ_SEED" -runs="$runs" \
		-reload=0 -timeout=60 -print_final_stats=1 \
		-artifact_prefix="$t-artifacts/" "$t-corpus" \
		>"$FUZZ_TMP/$t.log" 2>&1; then
		grep -E '^(#[0-9]+[[:space:]]+DONE|Done|stat::new_units_added)' \
			"$FUZZ_TMP/$t.log" || true
		note "$t: passed in $((SECONDS - start)) s"
		return 0
	fi
	echo "----- $t output (last 120 lines) -----"
	tail -n 120 "$FUZZ_TMP/$t.log"
	for a in "$FUZZ_TMP/$t-artifacts"/*; do
		[ -f "$a" ] || continue
		echo "----- crashing input $(basename "$a") (first 512 bytes) -----"
		head -c 512 "$a" | od -A d -c | head -n 40
	done
	return 1
}

stage_fuzz() {
	local t ok=0
	for t in "${FUZZ_TARGETS[@]}"; do
		if fuzz_one "$t"; then
			echo "pass" >"$FUZZ_TMP/$t.result"
		else
			echo "fail" >"$FUZZ_TMP/$t.result"
			ok=1
		fi
	done
	return "$ok"
}

run_stage fuzz "libFuzzer targets, fixed seed and run counts" stage_fuzz
fuzz_rc=$STAGE_RC
fuzz_failed=0
for t in "${FUZZ_TARGETS[@]}"; do
	if [ "$(cat "$FUZZ_TMP/$t.result" 2>/dev/null)" = pass ]; then
		PASSED=$((PASSED + 1))
	else
		FAILED=$((FAILED + 1))
		fuzz_failed=1
	fi
done
if [ "$fuzz_rc" -ne 0 ]; then
	stage_failed "$fuzz_failed"
fi
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS ASAN_SYMBOLIZER_PATH

# ---- 5. distcheck ---------------------------------------------------------
stage_distcheck() {
	timeout -k 30 1800 make -C "$BUILD" -j"$JOBS" distcheck
}

run_stage distcheck "make distcheck" stage_distcheck
if [ "$STAGE_RC" -eq 0 ]; then
	PASSED=$((PASSED + 1))
else
	dc=$(find "$BUILD" -maxdepth 4 -path '*/_build/sub' -type d 2>/dev/null | head -n 1)
	if [ -n "$dc" ]; then
		show_failed_logs "$dc"
	fi
	stage_failed
fi

finish
