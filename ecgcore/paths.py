"""Where ECG Lab keeps its files, and the user's settings.

Everything the project writes (caches, generated data, run stores, settings) lives under one data
directory: ``$ECGLAB_HOME`` when set, else ``~/.ecglab``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_HOME = Path("~/.ecglab")
PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
#: The bundled real PTB-XL sample (11 records, CC BY 4.0).
BUNDLED_PTBXL = PROJECT_DIR / "assets" / "ptbxl-sample"

#: Settings the user can set; each also reads an environment variable that wins over the file.
SETTING_ENV: dict[str, str] = {
    "ptbxl_dir": "ECGLAB_PTBXL",
    "ptbxl_plus_dir": "ECGLAB_PTBXL_PLUS",
    "deepfake_dir": "ECGLAB_DEEPFAKE",
    "challenge_dir": "ECGLAB_CHALLENGE",
}


#: Matplotlib (the PDF report) keeps its font cache under the data directory, not in ``~/.cache``;
#: set here, before anything imports matplotlib, unless the user chose a folder.
os.environ.setdefault(
    "MPLCONFIGDIR", str(Path(os.environ.get("ECGLAB_HOME") or DEFAULT_HOME).expanduser() / "matplotlib")
)


def data_home() -> Path:
    """Return the data directory, creating it if needed."""
    home = Path(os.environ.get("ECGLAB_HOME") or DEFAULT_HOME).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def subdir(name: str) -> Path:
    """Return (and create) a directory under the data home: ``cache``, ``runs``, ``data`` ..."""
    path = data_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    return subdir("cache")


def runs_dir() -> Path:
    return subdir("runs")


def generated_dir() -> Path:
    """Where generated data (the DeepFake demo set) goes."""
    return subdir("data")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def _settings_path() -> Path:
    return data_home() / "settings.json"


def load_settings() -> dict[str, Any]:
    """The saved settings, with environment variables taking precedence."""
    path = _settings_path()
    settings: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for key, env in SETTING_ENV.items():
        if os.environ.get(env):
            settings[key] = os.environ[env]
    return settings


def save_settings(updates: dict[str, Any]) -> dict[str, Any]:
    """Merge ``updates`` into the saved settings file (atomically) and return the result."""
    path = _settings_path()
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    saved.update({k: v for k, v in updates.items()})
    saved = {k: v for k, v in saved.items() if v not in (None, "")}
    atomic_write_json(path, saved)
    return load_settings()


def display_path(path: str | os.PathLike) -> str:
    """A path fit to show in the browser: relative to the data directory or the project, else the file name.

    Pages never show the server's absolute paths (home directories, temporary upload folders).
    """
    resolved = Path(path).expanduser().resolve()
    for base in (data_home(), PROJECT_DIR):
        try:
            return str(resolved.relative_to(base.resolve()))
        except ValueError:
            continue
    return resolved.name


def display_text(text: str) -> str:
    """A message fit for the browser: absolute paths under the data directory or the project made relative."""
    for base in (data_home().resolve(), PROJECT_DIR.resolve()):
        text = text.replace(f"{base}{os.sep}", "").replace(str(base), ".")
    return text
