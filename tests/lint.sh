#!/usr/bin/env bash
# Style and static checks: clang-format on every C++ file, clang-tidy (.clang-tidy) on our sources.
#   tests/lint.sh               both
#   tests/lint.sh --format-only clang-format only (fast; tests/run.sh runs this)
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.h' '*.cc' | grep -v '/testdata/' || true)
[ ${#files[@]} -eq 0 ] && exit 0

if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/e2eid-format.log; then
  echo "clang-format: these files need formatting (run: clang-format -i FILE):" >&2
  grep -oE '^[^: ]+\.(h|cc):[0-9]+' /tmp/e2eid-format.log | cut -d: -f1 | sort -u | sed 's/^/  /' >&2
  exit 1
fi
echo "clang-format: ${#files[@]} files OK"

[ "${1:-}" = "--format-only" ] && exit 0

db=build/dev/compile_commands.json
[ -f "$db" ] || cmake --preset dev >/dev/null
# Product sources only (tests are held to the compiler's -Werror and the sanitizers): keeps CI fast.
mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '\.cc$' | grep -v '_test\.cc$')
# clang-tidy 19: older versions cannot parse libstdc++ 12's <expected>.
tidy=$(command -v clang-tidy-19 || true)
if [ -z "$tidy" ]; then echo "clang-tidy-19 missing (tests/deps.sh installs it)" >&2; exit 1; fi
printf "%s\n" "${sources[@]}" | xargs -P "$(nproc)" -n 4 "$tidy" -p build/dev --quiet 2>/dev/null
echo "clang-tidy: ${#sources[@]} files OK"
