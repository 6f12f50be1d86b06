"""Running code in a fresh interpreter, as a user's script runs."""

import os
import subprocess
import sys
import tempfile


def run_python(code: str, timeout: float = 120, **env: str) -> str:
    """Run code in a fresh interpreter outside the repository (so it imports the
    installed pydfn, not the source folder), with env added to the environment;
    return its stdout, failing the test with its stderr if it fails."""
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env), capture_output=True,
                         text=True, timeout=timeout, cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    return out.stdout
