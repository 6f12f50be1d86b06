"""Writing a file atomically: whatever happens mid-write, the file at the path is the old one or the
new one, whole (checkpoints, ONNX exports, predictions, logs)."""

from __future__ import annotations

import os
import secrets
import stat
from typing import BinaryIO, Callable


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a new file beside ``path``, flush it to disk, then rename it
    over ``path``: on any error (or a crash) the previous file at ``path`` is left whole.
    Temporaries that killed writers of ``path`` left behind are removed first."""
    path = os.fspath(path)
    _remove_stale_temporaries(path)
    tmp = f"{path}{_TMP}{os.getpid()}-{secrets.token_hex(4)}"  # same folder, so the rename is atomic
    try:
        with open(tmp, "xb") as f:  # a new file: the umask decides its permissions
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # a replaced file keeps its own, as cp does
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_TMP = ".tmp-"  # a temporary's name: f"{target}.tmp-{pid}-{random hex}"


def _remove_stale_temporaries(path: str) -> None:
    """Delete the temporaries earlier saves to ``path`` left when they were killed (SIGTERM,
    SIGKILL, power loss: no handler runs) — those whose writing process no longer exists;
    a save running in another live process keeps its own."""
    folder, prefix = os.path.dirname(path) or ".", os.path.basename(path) + _TMP
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return  # the save itself reports an unusable folder
    for name in names:
        pid, _, token = name[len(prefix):].partition("-")
        if not (pid.isdigit() and len(token) == 8) or _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass  # gone already, or not ours to remove: the save goes on


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # a save in another thread of this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists under another user (or no such pid can be asked): leave it alone
    return True
