"""User plugins: a ``.py`` file or an importable module (``--load``) that registers passes or
fusion strategies. Whatever goes wrong while one loads is a ``PluginError`` naming the plugin.

A file is imported under a module name of its own, ``irperf_plugin_<stem>_<hash of its path>``:
never its bare file name, so a plugin called ``passes.py`` cannot shadow irperf's own packages,
two files that share a name stay two modules (a second registration of a taken pass name is then
an error, not a silent replacement), and loading one file twice is one import.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from irperf.checks import input_file_problem, message_of, one_line, show
from irperf.errors import IrperfError, PluginError

MODULE_PREFIX = "irperf_plugin_"


def module_name(path: Path) -> str:
    """The module name a plugin file is imported under."""
    stem = re.sub(r"\W", "_", path.stem) or "plugin"
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    return f"{MODULE_PREFIX}{stem}_{digest}"


def describe(error: BaseException, path: Path | None = None) -> str:
    """One line for an exception raised while a plugin ran: where in the plugin, and what."""
    if isinstance(error, SyntaxError):
        where = f"line {error.lineno}: " if error.lineno else ""
        text = one_line(error.msg) if isinstance(error.msg, str) else message_of(error)
        return f"{where}{type(error).__name__}: {text}"
    if isinstance(error, SystemExit):
        return f"called sys.exit({show(error.code)})"
    where = ""
    if path is not None:
        lines = [
            f.lineno
            for f in traceback.extract_tb(error.__traceback__)
            if f.filename == str(path) and f.lineno is not None
        ]
        where = f"line {lines[-1]}: " if lines else ""
    message = message_of(error)
    kind = "" if isinstance(error, IrperfError) else f"{type(error).__name__}: "
    return f"{where}{kind}{message}" if message else f"{where}{type(error).__name__}"


def load_plugin(spec: str | os.PathLike[str]) -> ModuleType:
    """Import a plugin by file path (``my_pass.py``) or dotted module name, so it registers."""
    text = os.fspath(spec)
    if not text.strip():
        raise PluginError("--load needs a .py file or a module name, got ''")
    if "\x00" in text:
        raise PluginError(f"--load {show(text)}: a path or module name holds a NUL character")
    if text.endswith(".py") or os.sep in text or "/" in text:
        return _load_file(Path(text), text)
    try:
        return importlib.import_module(text)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # a broken plugin must not take the CLI down with a traceback
        raise PluginError(f"--load {show(text)}: cannot import: {describe(e)}") from e


def _load_file(path: Path, text: str) -> ModuleType:
    problem = input_file_problem(path)
    if problem is not None:
        raise PluginError(f"--load: {problem}")
    resolved = path.resolve()
    name = module_name(resolved)
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    mod_spec = importlib.util.spec_from_file_location(name, resolved)
    if mod_spec is None or mod_spec.loader is None:
        raise PluginError(f"--load: cannot import {show(text)}")
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module  # attrs and dataclasses look their module up while it runs
    try:
        mod_spec.loader.exec_module(module)
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as e:
        del sys.modules[name]
        raise PluginError(f"--load {show(text)}: {describe(e, resolved)}") from e
    return module


def origin(module: str) -> str:
    """Where a registered class came from: its plugin file, or its module name."""
    found = sys.modules.get(module)
    file = getattr(found, "__file__", None)
    return str(file) if module.startswith(MODULE_PREFIX) and file else module
