"""Writing a file atomically: whatever happens mid-write, the file at the path is the old one or the
new one, whole (checkpoints, ONNX exports, predictions, logs, figures). A failure is an OSError
that names the file and the cause: ``cannot write model.npz: No space left on device``."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from typing import BinaryIO, Callable, Iterator


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a new file beside ``path``, flush it to disk, then rename it
    over ``path``: on any error (or a crash) the previous file at ``path`` is left whole.
    Temporaries that killed writers of ``path`` left behind are removed first.

    A path :func:`check_writable` refuses is refused before ``write`` runs. What is no file
    of the user's — a pipe, anything under /dev or /proc (``/dev/null``, ``/dev/stdout``) — is
    written into: renaming over it would replace the device or the link itself (as root, the
    system's). Through a symbolic link, the file it names is replaced and the link stays.
    """
    path = os.fspath(path)
    mode = check_writable(path)
    with _naming(path):
        if _written_into(path, mode):
            with open(path, "wb") as f:
                write(f)
            return
        _replace(_destination(path), mode, write)


def check_writable(path: str | os.PathLike[str]) -> int | None:
    """Check, before any work, that :func:`write_atomically` can write ``path``: its folder
    exists, it is no folder, and a file there (or else the folder) is not read-only.

    Returns
    -------
    int or None
        The mode of what is at ``path`` (links followed), None when nothing is.

    Raises
    ------
    OSError
        ``cannot write {path}: {why}``: FileNotFoundError, IsADirectoryError or PermissionError.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    with _naming(path):
        if not os.path.exists(folder):
            raise OSError(errno.ENOENT, f"the folder {folder} does not exist")
        try:
            mode: int | None = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, "it is a folder")
        if _written_into(path, mode):
            return mode
        if mode is not None and not os.access(path, os.W_OK):
            raise OSError(errno.EACCES, "the file is read-only")
        home = os.path.dirname(_destination(path)) or "."  # where the temporary goes
        if not os.path.isdir(home):  # a link into a folder that is gone
            raise OSError(errno.ENOENT, f"the folder {home} does not exist")
        if not os.access(home, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, f"the folder {home} is read-only")
        return mode


def _written_into(path: str, mode: int | None) -> bool:
    """Whether ``path`` (which has ``mode``, or is new) is written into rather than replaced: a
    device or a pipe, or one of a process's own files (/proc/self/fd/1, /dev/fd/1, /dev/stdout:
    a link to /proc/self/fd/1), whose replacement would replace the link or the file behind the
    descriptor. A regular file elsewhere, /dev/shm's included, is replaced atomically."""
    if mode is not None and not stat.S_ISREG(mode):
        return True
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path))) + os.sep
    link = os.path.join(folder, os.readlink(path)) if os.path.islink(path) else ""
    return folder.startswith("/proc/") or link.startswith("/proc/")


def _destination(path: str) -> str:
    """The file a write of ``path`` replaces: the one a symbolic link names, so the link stays."""
    return os.path.realpath(path) if os.path.islink(path) else path


def append_whole(path: str | os.PathLike[str], data: bytes) -> None:
    """Add ``data`` at the end of the file ``path``: all of it or, on any error (a full disk,
    Ctrl-C), none of it: the file is cut back to its length before (a pipe or a terminal,
    such as ``/dev/stdout``, keeps what it was given)."""
    path = os.fspath(path)
    with _naming(path), open(path, "ab", buffering=0) as f:  # unbuffered: a failed write fails here
        before = os.fstat(f.fileno())
        try:
            rest = memoryview(data)
            while rest:
                rest = rest[f.write(rest):]
        except BaseException:
            if stat.S_ISREG(before.st_mode):
                f.truncate(before.st_size)
            raise


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """Turn an OSError inside into one that names ``path`` (not a temporary beside it); its
    errno, and so its class (PermissionError, FileNotFoundError...), is kept."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None:  # raised by the caller's write with a message of its own
            raise
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}") from None


def _replace(path: str, mode: int | None, write: Callable[[BinaryIO], object]) -> None:
    """Write a temporary beside ``path`` and rename it over ``path`` (which has ``mode``, or is new)."""
    _remove_stale_temporaries(path)
    folder, prefix = _temporaries(path)
    tmp = os.path.join(folder, f"{prefix}{os.getpid()}-{secrets.token_hex(4)}")  # same folder: rename is atomic
    try:
        with open(tmp, "xb") as f:  # a new file: the umask decides its permissions
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))  # a replaced file keeps its own, as cp does
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # never created, or the folder went away: the first error says why
            os.unlink(tmp)
        raise


_TMP = ".tmp-"  # a temporary's name: f"{target}.tmp-{pid}-{random hex}", the target's name cut to fit
_NAME_MAX = 255  # bytes of a file name (Linux, macOS)
_SUFFIX_MAX = len(_TMP) + 7 + 1 + 8  # a pid has at most 7 digits (Linux's pid_max is 2**22), then 8 hex digits


def _temporaries(path: str) -> tuple[str, str]:
    """The folder of ``path`` and the prefix of its temporaries' names: the target's name, cut so
    that a temporary's name is no longer than a file name may be."""
    folder, name = os.path.split(path)
    return folder or ".", os.fsdecode(os.fsencode(name)[:_NAME_MAX - _SUFFIX_MAX]) + _TMP


def _remove_stale_temporaries(path: str) -> None:
    """Delete the temporaries earlier saves to ``path`` left when they were killed (SIGTERM,
    SIGKILL, power loss: no handler runs) — those whose writing process no longer exists;
    a save running in another live process keeps its own."""
    folder, prefix = _temporaries(path)
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
