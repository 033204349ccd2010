"""The head's scratch directory (the encoded corpus, 4 bytes per token) in TMPDIR: removed on
exit, by the next run if this one was killed, and a full file system is a coded error."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import Errors, OutputError
from ..util import _alive

SCRATCH_PREFIX = "spacy_hs_head."


class ScratchDirectory:
    """A temporary directory for the encoded corpus (4 bytes per token), removed on exit. Its
    name holds the process id, so that the next run removes the scratch of a killed one."""

    def __enter__(self) -> Path:
        remove_stale_scratch(Path(tempfile.gettempdir()))
        try:
            self.path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}."))
        except OSError as err:
            self.__exit__(type(err), err, None)
            raise
        return self.path

    def __exit__(self, kind: Any, err: BaseException | None, traceback: Any) -> None:
        """Removes the directory; a full file system (ENOSPC) is E419, not a raw OSError."""
        if hasattr(self, "path"):
            shutil.rmtree(self.path, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            where = tempfile.gettempdir()
            free = shutil.disk_usage(where).free
            raise OutputError(Errors.E419.format(path=where, free=free)) from None


def remove_stale_scratch(directory: Path) -> None:
    """Remove the scratch directories in ``directory`` of processes that no longer run (a run
    killed by SIGKILL cannot remove its own)."""
    for path in directory.glob(f"{SCRATCH_PREFIX}*.*"):
        pid = path.name[len(SCRATCH_PREFIX) :].split(".", 1)[0]
        if pid.isdigit() and path.is_dir() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
