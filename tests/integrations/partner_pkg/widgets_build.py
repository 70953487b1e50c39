"""A minimal PEP 517 build backend (stdlib only): a wheel of bastion_partner_widgets with the pyproject's entry points."""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "bastion_partner_widgets"


def _project() -> dict:
    return tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _dist_info(project: dict) -> dict[str, str]:
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in targets.items()) + "\n"
        for group, targets in project.get("entry-points", {}).items()
    )
    return {
        "METADATA": f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\nSummary: {project['description']}\n",
        "WHEEL": "Wheel-Version: 1.0\nGenerator: widgets_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "entry_points.txt": entry_points,
    }


def get_requires_for_build_wheel(config_settings=None) -> list[str]:
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    project = _project()
    dist = f"{project['name'].replace('-', '_')}-{project['version']}"
    files = {path.relative_to(HERE).as_posix(): path.read_bytes() for path in sorted((HERE / PACKAGE).rglob("*.py"))}
    files.update({f"{dist}.dist-info/{name}": text.encode() for name, text in _dist_info(project).items()})
    record = []
    name = f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{dist}.dist-info/RECORD,,")
        wheel.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return name
