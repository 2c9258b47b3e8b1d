#!/bin/sh
# A Catch test name must not hold ';': CMake splits lists on it, so
# catch_discover_tests would register two ctest tests that match nothing.
#
#   catch_names_check.sh TESTS_DIR
set -eu
if grep -rnE 'TEST_CASE\("[^"]*;' "$1" --include='*.cpp'; then
  echo "catch_names_check: the test names above hold ';' (use ',' or 'and')" >&2
  exit 1
fi
echo "catch_names_check: no test name holds ';'"
