"""Build the Lambda deployment zip: the handler, the shared render modules, Pillow and pillow-heif.

    python lambda/package.py [--arch x86_64|arm64] [--python 3.12] [--glibc 2.34] [--out ZIP]

Defaults come from LAMBDA_ARCH, LAMBDA_PYTHON and LAMBDA_GLIBC (`make lambda-package`
passes them). The glibc version defaults to the runtime's OS: Amazon Linux 2 (2.26) for
python3.11 and older, Amazon Linux 2023 (2.34) for python3.12 and newer. Pillow's version is
the one pinned in pyproject.toml, so the function renders exactly as the service does (and
pillow-heif's, for HEIC originals); the wheels are downloaded once into lambda/build/wheels/
and reused. boto3 is not bundled: the
Lambda runtime has it. A pip that cannot download the wheel fails the build.
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
DEFAULT_ZIP = BUILD / "imagify-thumbnails.zip"
RENDER_MODULE = ROOT / "src" / "imagify" / "adapters" / "pillow_render.py"
# pillow_render imports image_checks, which imports the checks of the other formats.
CHECK_MODULES = [RENDER_MODULE.with_name(f"{name}.py") for name in ("image_checks", "png_checks", "gif_heif_checks")]
WHEELS = ("pillow", "pillow-heif")  # pinned in pyproject.toml, bundled in the zip
MIB = 1024 * 1024
ZIPPED_LIMIT = 50 * MIB  # a direct upload of a .zip
UNZIPPED_LIMIT = 250 * MIB  # the function's code and layers, unzipped
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # the same inputs give the same zip


def pillow_requirement(name: str = "pillow") -> str:
    """`name==X` exactly as pinned in pyproject.toml's dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        if re.match(rf"(?i){re.escape(name)}\s*==", requirement):
            return str(requirement).replace(" ", "")
    raise SystemExit(
        f"pyproject.toml pins no {name}==X.Y.Z: the function must use the service's {name}"
    )


def default_glibc(python: str) -> str:
    minor = int(python.split(".")[1])
    return "2.26" if minor <= 11 else "2.34"


def platforms(arch: str, glibc: str) -> list[str]:
    """Every manylinux tag a system with this glibc runs (pip does not widen --platform itself)."""
    machine = MACHINES[arch]
    top = int(glibc.split(".")[1])
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(top, 16, -1)]
    return tags + [f"manylinux2014_{machine}"]


def download_pillow(requirement: str, python: str, arch: str, glibc: str) -> Path:
    cache = BUILD / "wheels" / f"cp{python.replace('.', '')}-{arch}-glibc{glibc}"
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-*.whl"
    cached = sorted(cache.glob(stem))
    if cached:
        return cached[0]
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--implementation", "cp", "--python-version", python, "--dest", str(cache),
    ]  # fmt: skip
    for tag in platforms(arch, glibc):
        command += ["--platform", tag]
    done = subprocess.run([*command, requirement], capture_output=True, text=True)
    if done.returncode != 0:
        hint = "is PyPI reachable? does that release ship such a wheel?"
        if int(glibc.split(".")[1]) < 28:
            hint = (
                "Pillow 13 ships no wheel for glibc older than 2.28, as on Amazon Linux 2 "
                "(python3.11): use --python 3.12"
            )
        raise SystemExit(
            f"pip could not download {requirement} for CPython {python} on {arch} with glibc {glibc} "
            f"({hint}):\n{done.stderr}"
        )
    return sorted(cache.glob(stem))[0]


def stage(wheels: list[Path], python: str, staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    # A wheel is a zip whose root is site-packages (neither has a .data directory).
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            if any(".data/" in name for name in archive.namelist()):
                raise SystemExit(f"{wheel.name} has a .data directory: install it with pip instead")
            archive.extractall(staging)
    shutil.copy2(HERE / "handler.py", staging / "handler.py")
    package = staging / "imagify" / "adapters"
    package.mkdir(parents=True)
    (staging / "imagify" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    shutil.copy2(RENDER_MODULE, package / "pillow_render.py")
    for module in CHECK_MODULES:
        shutil.copy2(module, package / module.name)
    if python == f"{sys.version_info.major}.{sys.version_info.minor}":
        # /var/task is read-only, so the runtime cannot cache bytecode: ship it. Unchecked
        # hashes, because the zip's timestamps are not the sources'.
        compileall.compile_dir(
            staging,
            quiet=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


def write_zip(staging: Path, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".zip.partial")
    unzipped = 0
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), FIXED_TIME)
            executable = path.suffix == ".so" or ".so." in path.name
            info.external_attr = (0o755 if executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    os.replace(partial, out)
    return unzipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--arch", default=os.environ.get("LAMBDA_ARCH") or "x86_64", choices=sorted(MACHINES)
    )
    parser.add_argument("--python", default=os.environ.get("LAMBDA_PYTHON") or "3.12")
    parser.add_argument("--glibc", default=os.environ.get("LAMBDA_GLIBC") or None)
    parser.add_argument("--out", type=Path, default=DEFAULT_ZIP)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d{1,2}", args.python):
        parser.error(f"--python takes a version such as 3.12, not {args.python!r}")
    glibc = args.glibc or default_glibc(args.python)
    if not re.fullmatch(r"2\.\d{2}", glibc):
        parser.error(f"--glibc takes a version such as 2.34, not {glibc!r}")

    wheels = [
        download_pillow(pillow_requirement(name), args.python, args.arch, glibc) for name in WHEELS
    ]
    staging = args.out.parent / f".{args.out.stem}-staging"
    try:
        stage(wheels, args.python, staging)
        unzipped = write_zip(staging, args.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    zipped = args.out.stat().st_size

    print(f"{args.out}: python{args.python} {args.arch} (glibc {glibc}), {', '.join(w.name for w in wheels)}")
    print(
        f"  zipped   {zipped / MIB:6.1f} MiB  (Lambda's limit for a direct upload: {ZIPPED_LIMIT // MIB} MiB)"
    )
    print(
        f"  unzipped {unzipped / MIB:6.1f} MiB  (Lambda's limit, with layers: {UNZIPPED_LIMIT // MIB} MiB)"
    )
    if zipped > ZIPPED_LIMIT or unzipped > UNZIPPED_LIMIT:
        print("the package is over Lambda's size limits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
