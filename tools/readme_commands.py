"""Print one of the two set-up commands that README.md opens with: `main` or `test`.

.ci/run executes `test` verbatim, so the README's command is the one CI runs.
usage: python3 tools/readme_commands.py main|test
"""
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def commands():
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", README.read_text(), flags=re.S)
    lines = [b.strip() for b in blocks[:2]]
    if len(lines) != 2 or any("\n" in c for c in lines):
        sys.exit("README.md must open with two one-line command blocks (main job, tests)")
    return {"main": lines[0], "test": lines[1]}


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    print(commands()[which])
