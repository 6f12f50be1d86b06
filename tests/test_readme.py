"""The documentation never goes stale: every ```python block of the docs runs, each in a fresh
interpreter, and the commands of their ```bash blocks name things that exist.

The docs: README.md, benchmarks/README.md, benchmarks/RECIPE.md and .ci/README.md (DOCS below).
Test ids name the file and the line the block's code starts on, e.g. ``README.md:123``.

Conventions for the docs:
- a block fenced as ```python (or ```py, ~~~python; attributes after the language are allowed)
  is a program that must run on its own: it cannot use names from an earlier block;
- a block whose previous non-blank line is ``<!-- not-tested -->`` is skipped (shown by ``-ra``):
  for blocks that need a network, a GPU, or minutes of training;
- a block runs with the current directory and the user cache (XDG_CACHE_HOME) in a fresh
  temporary folder, so the files it writes vanish, and with OMP_NUM_THREADS=1;
- a block that loads Fashion-MNIST is skipped when the dataset is not installed (tests never
  download it);
- a block that trains with ``distributed=True`` runs under ``mpiexec -n 2``, and is skipped
  when mpi4py or mpiexec is missing (``pip install ".[mpi]"``);
- in ```bash blocks, every ``pydfn ...`` command must parse, every ``python benchmarks/X.py``
  must name a script that exists and flags it defines, and every ``.ci/X`` must exist;
- a relative link ``[text](path#anchor)`` must name a file that exists and, in a Markdown
  file, a heading that exists.

The sdist leaves out .ci/ and benchmarks/: what a doc says of a folder that is not there is not
checked (a folder that is there must hold its doc).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pydfn import cli, datasets

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "benchmarks/README.md", "benchmarks/RECIPE.md", ".ci/README.md"]
README = ROOT / "README.md"
NOT_TESTED = "<!-- not-tested -->"
_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


class Block:
    def __init__(self, line: int, code: str, skip: bool, language: str = "python"):
        self.line, self.code, self.skip, self.language = line, code, skip, language


def code_blocks(text: str, name: str = "README.md") -> list[Block]:
    """Every fenced code block of Markdown ``text``, with its language and the line its code starts on.

    Follows CommonMark's fences: ``` or ~~~ (3 or more), closed by a fence of the same
    character at least as long; a block is taken whole, so a ```python inside a ```markdown
    example is not a block of its own.
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
            raise ValueError(f"{name} line {i + 1}: the code block opened here is never closed")
        language = info.split()[0].lower() if info else ""
        blocks.append(Block(i + 2, "\n".join(lines[i + 1:end]) + "\n", previous == NOT_TESTED, language))
        previous = ""
        i = end + 1
    return blocks


def python_blocks(text: str, name: str = "README.md") -> list[Block]:
    """The Python code blocks of Markdown ``text`` (see :func:`code_blocks`)."""
    return [b for b in code_blocks(text, name) if b.language in ("python", "py", "python3")]


def read(doc: str) -> str:
    return (ROOT / doc).read_text(encoding="utf-8")


def in_this_tree(path: Path) -> bool:
    """False for what lies in a folder this source tree lacks (the sdist has no .ci/ or benchmarks/)."""
    return path.parent.is_dir()


PRESENT = [doc for doc in DOCS if in_this_tree(ROOT / doc)]
BLOCKS = [(doc, block) for doc in PRESENT if (ROOT / doc).is_file() for block in python_blocks(read(doc), doc)]


def fashion_mnist_installed() -> bool:
    try:
        datasets.find_fashion_mnist(download=False)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.parametrize("doc", DOCS)
def test_the_doc_exists(doc):
    if not in_this_tree(ROOT / doc):
        pytest.skip(f"this source tree has no {Path(doc).parent}/ (an sdist)")
    assert (ROOT / doc).is_file(), f"{doc} is missing"


def test_the_readme_has_python_blocks():
    assert len(python_blocks(read("README.md"))) >= 1


@pytest.mark.parametrize("doc, block", BLOCKS, ids=[f"{doc}:{b.line}" for doc, b in BLOCKS])
def test_doc_block_runs(doc, block, tmp_path, monkeypatch):
    where = f"{doc}:{block.line}"
    if block.skip:
        pytest.skip(f"{where} is marked {NOT_TESTED}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # for the check below and the block
    # One thread: results do not depend on it, and on a shared CI machine idle OpenMP threads
    # spinning against other jobs made the quick start 13x slower (127 s vs 10 s).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    if "load_fashion_mnist" in block.code and not fashion_mnist_installed():
        pytest.skip(f"{where} needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    command = [sys.executable, str(script)]
    if "distributed=True" in block.code:
        if importlib.util.find_spec("mpi4py") is None or MPIEXEC is None:
            pytest.skip(f"{where} needs mpi4py and mpiexec: pip install '.[mpi]'")
        command = [MPIEXEC, "-n", "2", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, f"{where} failed:\n{out.stderr}"


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
    assert [b.language for b in code_blocks(text)] == ["python", "py", "markdown", "bash", "python"]
    with pytest.raises(ValueError, match="^doc.md line 2: the code block opened here is never closed"):
        python_blocks("text\n```python\nx = 1\n", "doc.md")


def shell_commands(text: str) -> list[list[str]]:
    """The commands of the ```bash blocks of Markdown ``text``, as argument lists (comments,
    ``&&``, ``;`` and ``|`` split them; leading ``VAR=value`` assignments are dropped)."""
    commands = []
    for block in code_blocks(text):
        if block.language not in ("bash", "sh", "shell", "console"):
            continue
        for line in block.code.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")  # quotes keep a ; or | inside
            lexer.whitespace_split = True
            words: list[str] = []
            for token in [*lexer, ";"]:
                if token not in ("&&", ";", "|", "||", "&"):
                    words.append(token)
                    continue
                while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                    words = words[1:]
                if words:
                    commands.append(words)
                words = []
    return commands


def pydfn_commands(text: str) -> list[list[str]]:
    """The ``pydfn ...`` commands of the ```bash blocks of Markdown ``text``, as argument lists."""
    return [words[words.index("pydfn") + 1:] for words in shell_commands(text) if "pydfn" in words]


def test_every_pydfn_command_of_the_docs_parses():
    assert ["train"] in pydfn_commands(read("README.md"))  # the main job of the set-up
    for doc in PRESENT:
        for argv in pydfn_commands(read(doc)):
            try:
                cli._parser().parse_args(argv)
            except SystemExit as exc:
                raise AssertionError(f"{doc}: pydfn {' '.join(argv)} does not parse") from exc


def test_command_collector():
    text = ("```bash\napt-get x; pip install . && pydfn train  # go\nmpiexec -n 2 pydfn train --distributed\n"
            "PYDFN_MAX_ISA=avx2 python benchmarks/compare.py --rounds 3\n```\n")
    assert pydfn_commands(text) == [["train"], ["train", "--distributed"]]
    assert shell_commands(text)[-1] == ["python", "benchmarks/compare.py", "--rounds", "3"]
    quoted = "```bash\ncmake -B b -Dx=\"$(python -c 'import a; print(1)')\" && pydfn info\n```\n"
    assert shell_commands(quoted) == [["cmake", "-B", "b", "-Dx=$(python -c 'import a; print(1)')"], ["pydfn", "info"]]


def test_every_script_and_flag_the_docs_run_exists():
    """``python benchmarks/X.py --flag`` and ``.ci/X`` in a doc's bash blocks: X exists and defines --flag."""
    for doc in PRESENT:
        for words in shell_commands(read(doc)):
            scripts = [w for w in words if re.fullmatch(r"(\./)?(benchmarks|\.ci)/[\w.-]+", w)]
            for script in scripts:
                path = ROOT / script
                if not in_this_tree(path):
                    continue
                assert path.is_file(), f"{doc}: {' '.join(words)}: {script} does not exist"
                if script.endswith(".py"):
                    source = path.read_text(encoding="utf-8")
                    for flag in words[words.index(script) + 1:]:
                        name = flag.split("=")[0]
                        if name.startswith("--"):
                            assert re.search(rf"[\"']{re.escape(name)}[\"']", source), \
                                f"{doc}: {' '.join(words)}: {script} has no flag {name}"


def test_the_readme_shows_the_test_command_ci_runs():
    """CI (.ci/run) runs the README's test command; the README's set-up shows the same one."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(ci) if "The README's test command" in line)
    command = next(line.strip() for line in ci[start:] if line.strip() and not line.startswith("#"))
    shown = [line for b in code_blocks(read("README.md")) if b.language == "bash"
             for line in b.code.splitlines() if line.startswith('pip install ".[test]" && ')]
    assert shown == [f'pip install ".[test]" && {command}']


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    inside = set()
    for block in code_blocks(text):
        inside.update(range(block.line - 1, block.line + block.code.count("\n")))
    found: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        match = re.match(r"^#{1,6} (.*)$", line)
        if match and number not in inside:
            base = slug(match[1])
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def test_slugs_and_anchors():
    assert slug("The recipe: the most accurate MLP within 800 epochs") == \
        "the-recipe-the-most-accurate-mlp-within-800-epochs"
    assert slug("Save, load, resume (`pydfn.load`)") == "save-load-resume-pydfnload"
    assert anchors("# A\n```bash\n# not a heading\n```\n## A\n") == {"a", "a-1"}


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc):
    if not in_this_tree(ROOT / doc):
        pytest.skip(f"this source tree has no {Path(doc).parent}/ (an sdist)")
    text = read(doc)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s): and mailto: are not checked here
        path, _, anchor = target.partition("#")
        file = (ROOT / doc).parent / path if path else ROOT / doc
        if not in_this_tree(file):
            continue
        assert file.exists(), f"{doc}: the link {target} names a missing file"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file.read_text(encoding="utf-8")), \
                f"{doc}: the link {target} names a heading that does not exist"


def test_every_test_the_docs_name_exists():
    """``test_x.py`` and ``test_x.py::test_name`` in the docs (e.g. the guarantees table) name real tests."""
    tests = ROOT / "tests"
    if not in_this_tree(tests):
        pytest.skip("the tests folder is not in this tree")
    for doc in PRESENT:
        for path, _, name in re.findall(r"\b(test_\w+\.py)(::(\w+))?", read(doc)):
            assert (tests / path).is_file(), f"{doc}: {path} does not exist"
            if name:
                assert re.search(rf"^def {name}\(", (tests / path).read_text(encoding="utf-8"), re.M), \
                    f"{doc}: {path} has no test {name}"
