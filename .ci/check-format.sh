#!/usr/bin/env bash
# Fails, listing them, if any C++ source under include lib tests samples bench
# is not formatted as .clang-format says (with clang-format 16: older versions
# mangle requires-clauses). Fix a file with: clang-format-16 -i <file>
set -euo pipefail
cd "$(dirname "$0")/.."

clang_format=${CLANG_FORMAT:-clang-format-16}
command -v "$clang_format" >/dev/null || {
    echo "check-format: $clang_format not found (Debian package clang-format-16)" >&2
    exit 2
}
dirs=(include lib tests samples bench)

# The tracked files in a git checkout (no build trees), else every file.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- "${dirs[@]/%//*.cpp}" "${dirs[@]/%//*.hpp}")
else
    mapfile -t files < <(find "${dirs[@]}" -type f \( -name '*.cpp' -o -name '*.hpp' \) | sort)
fi

unformatted=()
for f in "${files[@]}"; do
    [ -f "$f" ] || continue  # deleted in the work tree, not yet in the index
    if ! "$clang_format" --dry-run --Werror "$f" >/dev/null 2>&1; then
        unformatted+=("$f")
    fi
done

if [ "${#unformatted[@]}" -ne 0 ]; then
    echo "check-format: ${#unformatted[@]} of ${#files[@]} files are not formatted:" >&2
    printf '  %s\n' "${unformatted[@]}" >&2
    echo "fix with: $clang_format -i <file>..." >&2
    exit 1
fi
echo "check-format: ${#files[@]} files formatted"
