"""Run many snippets in one fresh interpreter, so a crash (segfault, abort, hang) fails the
tests that own the snippets instead of killing the test run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

_RUNNER = r"""
import json, sys
namespace = {}
exec(sys.argv[1], namespace)
for case, code in json.loads(sys.stdin.read()):
    print(json.dumps({"start": case}), flush=True)  # the last one started names a crash
    try:
        value = eval(code, namespace)
        record = {"id": case, "value": value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)}
    except BaseException as exc:
        record = {"id": case, "error": type(exc).__name__, "message": str(exc)}
    print(json.dumps(record), flush=True)
"""


def run_cases(setup: str, cases: dict[str, str], *, timeout: float = 180, env: dict | None = None) -> dict[str, dict]:
    """Evaluate each expression of ``cases`` (id -> code) after ``setup``, in one subprocess.

    Returns
    -------
    dict of id -> record
        ``{"value": ...}`` or ``{"error": exception type name, "message": str}``; when the
        interpreter dies, the unfinished cases get ``{"crash": what happened}``.
    """
    try:
        proc = subprocess.run([sys.executable, "-c", _RUNNER, setup], input=json.dumps(list(cases.items())),
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=tempfile.gettempdir())  # not the source folder: the installed pydfn
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr, code = f"timed out after {timeout} s", "timeout"
    results, started = {}, None
    for line in stdout.splitlines():
        record = json.loads(line)
        if "start" in record:
            started = record["start"]
        else:
            results[record["id"]] = record
    if code != 0:
        crash = f"the interpreter died ({code}) in case {started!r}: {stderr[-3000:]}"
        for case in cases:
            results.setdefault(case, {"id": case, "crash": crash})
    return results


def run_fuzz_script(script: str, examples: int, seed: str, corpus) -> None:
    """Run a hypothesis fuzz script (argv: examples, seed) in a fresh interpreter; it must print "ok".

    Under `.ci/fuzz` (PYDFN_FUZZ_KEEP set) failing inputs are saved into ``corpus``.
    """
    import os
    env = dict(os.environ)
    if os.environ.get("PYDFN_FUZZ_KEEP"):
        env["PYDFN_FUZZ_SAVE"] = str(corpus)
    out = subprocess.run([sys.executable, "-c", script, str(examples), seed], capture_output=True, text=True,
                         timeout=max(600, examples / 10), cwd=tempfile.gettempdir(), env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-5000:]


def replay_corpus(setup: str, call: str, files) -> None:
    """Each saved failing input (``call.format(path=...)`` after ``setup``) must raise ValueError."""
    results = run_cases(setup, {p.name: call.format(path=str(p)) for p in files})
    for name, record in results.items():
        assert record.get("error") == "ValueError", (name, record)
