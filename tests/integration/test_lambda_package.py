"""`lambda/package.py` builds a zip that imports and renders with nothing but its contents.

The package is built for the machine running the tests (its CPU, Python and glibc), so it
can be imported here. The fresh interpreter runs with `-I -S`: no site-packages, no
PYTHON* variables, no current directory. Its path is the unzipped package, then a folder
holding only boto3 and its dependencies, since the Lambda runtime provides those (the zip
must not). pip must download Pillow's wheel (cached in lambda/build/wheels/): without PyPI
these tests fail, they do not skip.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import platform
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

from tests.integration.services import AWS_TEST_ENV

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lambda" / "package.py"
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# "glibc 2.36" -> "2.36"
HOST_GLIBC = (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.28").split()[-1]
# What the Lambda runtime already has, besides the standard library.
RUNTIME = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"]
# The rest of Imagify, which the function must not drag in.
FORBIDDEN = ("imagify.domain", "imagify.entrypoints", "imagify.settings", "litestar", "sqlalchemy",
             "msgspec", "dependency_injector", "redis", "pymysql", "alembic")  # fmt: skip

PROBE = """
import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
started = time.perf_counter()
import handler
import_ms = (time.perf_counter() - started) * 1000
import PIL
from imagify.adapters import pillow_render
at_import = sorted(sys.modules)
result = handler.handler(json.loads(sys.argv[3]), None)
print(json.dumps({"import_ms": import_ms, "modules": at_import, "result": result,
                  "files": [handler.__file__, PIL.__file__, pillow_render.__file__]}))
"""


def build(out: Path, *options: str) -> str:
    done = subprocess.run(
        [sys.executable, str(PACKAGE), "--out", str(out), *options],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"lambda/package.py failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def runtime_folder(folder: Path) -> Path:
    """Links to boto3 and its dependencies only, standing for the Lambda runtime's."""
    folder.mkdir()
    for name in RUNTIME:
        source = Path(importlib.import_module(name).__file__ or "")
        target = source.parent if source.name == "__init__.py" else source
        (folder / target.name).symlink_to(target)
    return folder


def jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 0, 255)).save(out, "JPEG")
    return out.getvalue()


def heic(size: tuple[int, int]) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, (0, 0, 255)).save(out, "HEIF")
    return out.getvalue()


@pytest.fixture(scope="module")
def host_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "imagify-thumbnails.zip"
    build(out, "--arch", HOST_ARCH, "--python", HOST_PYTHON, "--glibc", HOST_GLIBC)
    return out


def test_the_zip_holds_the_handler_the_render_module_and_pillow_but_not_boto3(
    host_zip: Path,
) -> None:
    names = zipfile.ZipFile(host_zip).namelist()

    assert "handler.py" in names
    assert {
        "imagify/adapters/pillow_render.py",
        "imagify/adapters/image_checks.py",
        "imagify/adapters/png_checks.py",
        "imagify/adapters/gif_heif_checks.py",
    } <= set(names)
    assert any(n.startswith("_pillow_heif.") and n.endswith(".so") for n in names)
    assert {"imagify/__init__.py", "imagify/adapters/__init__.py"} <= set(names)
    assert any(n.startswith("PIL/_imaging.") and n.endswith(".so") for n in names)
    assert not [n for n in names if n.split("/")[0] in ("boto3", "botocore", "s3transfer")]
    assert not [
        n
        for n in names
        if n.startswith("imagify/")
        and not any(part in n for part in ("pillow_render", "image_checks", "png_checks", "gif_heif_checks", "__init__"))
    ]
    rendered = (ROOT / "src/imagify/adapters/pillow_render.py").read_bytes()
    assert zipfile.ZipFile(host_zip).read("imagify/adapters/pillow_render.py") == rendered


def test_the_unzipped_package_imports_and_renders_in_a_fresh_interpreter(
    host_zip: Path, tmp_path: Path, s3_bucket: tuple[str, str]
) -> None:
    endpoint_url, bucket = s3_bucket
    unzipped = tmp_path / "task"
    zipfile.ZipFile(host_zip).extractall(unzipped)
    for so in unzipped.rglob("*.so*"):
        so.chmod(0o755)
    source = heic((640, 480))  # pillow-heif from the zip decodes it, libavif encodes the AVIF
    boto3.session.Session().client("s3", endpoint_url=endpoint_url).put_object(
        Bucket=bucket, Key="p/originals/a", Body=source
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **AWS_TEST_ENV,
        "IMAGIFY_S3_ENDPOINT_URL": endpoint_url,
        "IMAGIFY_STORAGE_URL": f"s3://{bucket}/p",
    }
    event = {"source_key": "originals/a", "target_key": "thumbnails/a/200", "height": 200, "format": "avif"}

    runtime = runtime_folder(tmp_path / "runtime")
    command = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        PROBE,
        str(unzipped),
        str(runtime),
        json.dumps(event),
    ]

    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    probe: dict[str, Any] = json.loads(done.stdout)
    assert all(Path(f).is_relative_to(unzipped) for f in probe["files"]), probe["files"]
    assert not [m for m in probe["modules"] if m.startswith(FORBIDDEN)]
    assert "boto3" not in probe["modules"]  # built on the first event, not at import
    assert probe["result"]["height"] == 200 and probe["result"]["width"] == 267
    assert probe["result"]["content_type"] == "image/avif"
    print(f"cold import of the packaged handler: {probe['import_ms']:.0f} ms")
    assert probe["import_ms"] < 2000


def test_the_default_target_is_the_template_runtime_on_x86_64(tmp_path: Path) -> None:
    out = tmp_path / "imagify-thumbnails.zip"

    report = build(out, "--arch", "x86_64", "--python", "3.12")

    names = zipfile.ZipFile(out).namelist()
    assert any(n.startswith("PIL/_imaging.cpython-312-x86_64-linux-gnu") for n in names)
    assert "zipped" in report and "unzipped" in report and out.stat().st_size < 50 * 1024 * 1024
