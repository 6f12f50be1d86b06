"""Every ```python block of README.md runs, each in a fresh interpreter, so the README never goes stale.

Conventions for the README:
- a block fenced as ```python (or ```py, ~~~python; attributes after the language are allowed)
  is a program that must run on its own: it cannot use names from an earlier block;
- a block whose previous non-blank line is ``<!-- not-tested -->`` is skipped (shown by ``-ra``):
  for blocks that need a network, a GPU, or minutes of training;
- a block runs with the current directory and the user cache (XDG_CACHE_HOME) in a fresh
  temporary folder, so the files it writes vanish, and with OMP_NUM_THREADS=1;
- a block that loads Fashion-MNIST is skipped when the dataset is not installed (tests never
  download it).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pydfn import cli, datasets

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_TESTED = "<!-- not-tested -->"
_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


class Block:
    def __init__(self, line: int, code: str, skip: bool):
        self.line, self.code, self.skip = line, code, skip


def python_blocks(text: str) -> list[Block]:
    """The Python code blocks of Markdown ``text``, with the line their code starts on.

    Follows CommonMark's fences: ``` or ~~~ (3 or more), closed by a fence of the same
    character at least as long; blocks of other languages are passed over whole, so a
    ```python inside a ```markdown example is not collected.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    previous = ""  # the last non-blank line outside a block
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), None)
        if end is None:
            raise ValueError(f"README.md line {i + 1}: the code block opened here is never closed")
        language = info.split()[0].lower() if info else ""
        if language in ("python", "py", "python3"):
            blocks.append(Block(i + 2, "\n".join(lines[i + 1:end]) + "\n", previous == NOT_TESTED))
        previous = ""
        i = end + 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def fashion_mnist_installed() -> bool:
    try:
        datasets.find_fashion_mnist(download=False)
    except FileNotFoundError:
        return False
    return True


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 1


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_block_runs(block, tmp_path, monkeypatch):
    if block.skip:
        pytest.skip(f"README.md:{block.line} is marked {NOT_TESTED}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # for the check below and the block
    # One thread: results do not depend on it, and on a shared CI machine idle OpenMP threads
    # spinning against other jobs made the quick start 13x slower (127 s vs 10 s).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    if "load_fashion_mnist" in block.code and not fashion_mnist_installed():
        pytest.skip(f"README.md:{block.line} needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, f"README.md:{block.line} failed:\n{out.stderr}"


def test_collector_follows_fences_and_the_skip_marker():
    text = "\n".join([
        "Intro", "```python", "a = 1", "```", "",
        NOT_TESTED, "", "~~~py title=x", "b = 2", "~~~",
        "````markdown", "```python", "not_code()", "```", "````",
        "```bash", "pip install pydfn", "```",
        "```Python", "c = 3", "```",
    ])
    blocks = python_blocks(text)
    assert [(b.line, b.code, b.skip) for b in blocks] == [
        (3, "a = 1\n", False), (9, "b = 2\n", True), (20, "c = 3\n", False)]
    with pytest.raises(ValueError, match="line 2: the code block opened here is never closed"):
        python_blocks("text\n```python\nx = 1\n")


def pydfn_commands(text: str) -> list[list[str]]:
    """The ``pydfn ...`` commands of the ```bash blocks of Markdown ``text``, as argument lists."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            for part in re.split(r"&&|;|\|", line.split("#")[0]):
                words = shlex.split(part)
                if "pydfn" in words:
                    commands.append(words[words.index("pydfn") + 1:])
    return commands


def test_every_pydfn_command_of_the_readme_parses():
    commands = pydfn_commands(README.read_text(encoding="utf-8"))
    assert ["train"] in commands  # the main job of the set-up
    for argv in commands:
        try:
            cli._parser().parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"README.md: pydfn {' '.join(argv)} does not parse") from exc


def test_command_collector():
    text = "```bash\napt-get x; pip install . && pydfn train  # go\nmpiexec -n 2 pydfn train --distributed\n```\n"
    assert pydfn_commands(text) == [["train"], ["train", "--distributed"]]

