"""A new ZenML config folder starts with a ready local store: a copy of one made once.

The first use of a new ZenML config folder creates its SQLite store: every
table of ZenML's schema (all of its migrations, one after another), the
default project, user and stack. That costs about 1.7 CPU-seconds each time
(measured on 2 cores with ZenML 0.98), and every notebook and test session
starts a new folder (its private workspace): the tutorial's notebooks, their
checks and CI make dozens.

`seed_local_store` puts a copy of an empty store, made once per ZenML
version and user, where ZenML looks for it; ZenML then opens it as its own
(its schema is already at this version's head). Nothing else is copied: the
config file, with its own user id, is written by ZenML as usual. Any failure
leaves the folder as it was, and ZenML creates the store itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Optional

# Where ZenML keeps the default local store inside a config folder.
STORE_IN_CONFIG = Path("local_stores") / "default_zen_store" / "zenml.db"
_MAKE_STORE = "from zenml.client import Client; Client().active_stack_model"


def template_folder() -> Path:
    """The user's cache folder for the empty store (XDG_CACHE_HOME, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "my-docker"


def store_template(timeout: float = 300.0) -> Optional[Path]:
    """The empty store for the installed ZenML version, made now if missing; None on failure.

    It is made by a ZenML process of its own, in a temporary config folder,
    and moved into place in one step, so that two processes making it at the
    same time never see half a file. That process is pointed at the temporary
    folder as its project path (ZENML_REPOSITORY_PATH, where no `.zen` is, so
    ZenML searches no further): a project found from the working directory
    would get its active project rewritten to the new store's, which no other
    store has, and every later ZenML process there would warn and reset it.
    """
    try:
        path = template_folder() / f"zenml-{version('zenml')}-empty-store.db"
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="my-docker-store-") as scratch:
            environment = dict(os.environ, ZENML_CONFIG_PATH=scratch,
                               ZENML_REPOSITORY_PATH=scratch, ZENML_ANALYTICS_OPT_IN="false")
            subprocess.run([sys.executable, "-c", _MAKE_STORE], env=environment, check=True,
                           capture_output=True, timeout=timeout, cwd=scratch)
            made = Path(scratch) / STORE_IN_CONFIG
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            shutil.copyfile(made, partial)
            os.replace(partial, path)
        return path
    except (OSError, subprocess.SubprocessError):
        return None


def seed_local_store(config_dir: Path) -> bool:
    """Give a new ZenML config folder a ready store; False when it already has one or
    the template could not be made (ZenML then creates the store itself)."""
    target = Path(config_dir) / STORE_IN_CONFIG
    if target.exists() or (Path(config_dir) / "config.yaml").exists():
        return False
    template = store_template()
    if template is None:
        return False
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, partial)
        os.replace(partial, target)  # never half a store where ZenML looks
    except OSError:
        partial.unlink(missing_ok=True)
        return False
    return True
