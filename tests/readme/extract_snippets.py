#!/usr/bin/env python3
"""Writes each ```cpp block of Markdown files to <outdir>/<stem>_<line>.cpp.

    extract_snippets.py <srcdir> <outdir> <file.md relative to srcdir>...

Used by tests/readme/readme.cmake at configure time: every C++ block of the
README and of docs/*.md is a whole program that must compile and run (exit 0)
as written. A block whose first line is a comment containing "fragment" is
not a program (it shows a piece of one) and is skipped. Prints one line per
written file, "<file name>|<page>:<line of the block's first line>"; removes
stale snippet files first. The file is the block, byte for byte (no #line:
GCC would then take the code for a header's and warn about what is fine in a
source file, -Wsubobject-linkage), so a compiler error's line number is
counted from the block's first line. <stem> is the
Markdown file's name without ".md", with anything but letters and digits
made "_" (README_70.cpp, api_io_60.cpp).
"""
import pathlib
import re
import sys


def extract(srcdir: pathlib.Path, page: str, outdir: pathlib.Path) -> int:
    markdown = srcdir / page
    stem = re.sub(r"[^A-Za-z0-9]", "_", markdown.stem)
    block, start = None, 0
    for number, line in enumerate(markdown.read_text().splitlines(), start=1):
        if block is None:
            if line.strip() == "```cpp":
                block, start = [], number + 1
        elif line.strip() == "```":
            first = block[0].strip() if block else ""
            if not (first.startswith("//") and "fragment" in first):
                path = outdir / f"{stem}_{start}.cpp"
                path.write_text("\n".join(block) + "\n")
                print(f"{path.name}|{page}:{start}")
            block = None
        else:
            block.append(line)
    if block is not None:
        print(f"{page}: a ```cpp block opened at line {start - 1} is not closed",
              file=sys.stderr)
        return 1
    return 0


def main() -> int:
    srcdir, outdir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in outdir.glob("*.cpp"):
        stale.unlink()
    return max((extract(srcdir, page, outdir) for page in sys.argv[3:]), default=0)


if __name__ == "__main__":
    sys.exit(main())
