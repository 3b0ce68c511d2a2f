"""Local-directory storage: outputs land under one root folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def put(self, local_path: Path, key: str) -> str:
        target = (self.root / key).resolve()
        if self.root not in target.parents:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy to a temp name then rename, so a reader never sees a half-written output.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        os.close(fd)
        try:
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(target)
