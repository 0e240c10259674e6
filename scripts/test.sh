#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every test through ctest,
# first in a normal build, then under AddressSanitizer + UndefinedBehaviorSanitizer, then the
# integration tests with unicrm under valgrind, then each libFuzzer target for a bounded time.
#
#   scripts/test.sh             all three passes
#   UNICRM_QUICK=1 scripts/test.sh   only the normal build
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
jobs=$(nproc)

echo "== normal build"
cmake -S . -B build -DUNICRM_UNIT_TESTS=ON -DUNICRM_SANITIZE=OFF >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

[ "${UNICRM_QUICK:-0}" = 1 ] && exit 0

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
cmake -S . -B build-asan -DUNICRM_SANITIZE=ON -DUNICRM_UNIT_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== integration tests with unicrm under valgrind"
# unicrm links mimalloc: the synonym makes valgrind replace its malloc too, so leaks count.
vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
UNICRM_WRAPPER="$vg --soname-synonyms=somalloc=*mimalloc*" \
  ctest --test-dir build --output-on-failure -R '^integration_' -E "${UNICRM_VALGRIND_SKIP:-^$}"

echo "== libFuzzer targets, ${UNICRM_FUZZ_SECONDS:-20} s each"
CC=clang cmake -S . -B build-fuzz -DUNICRM_FUZZ=ON -DUNICRM_UNIT_TESTS=OFF \
  -DUNICRM_FUZZ_SECONDS="${UNICRM_FUZZ_SECONDS:-20}" >/dev/null
cmake --build build-fuzz -j"$jobs"
ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_'
