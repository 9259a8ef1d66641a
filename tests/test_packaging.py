"""The wheel ships core/, properties/ and adapters/ as softeq.*, and nothing else.

The wheel is built from a copy of the working tree (tracked and untracked,
non-ignored files: what a clean clone with the current changes holds), installed
with `--no-deps` into a fresh virtual environment that has no site packages,
and imported from there. The third-party dependencies (jax, chex, ...) come
from this project's environment through a `.pth` file in the new environment,
which appends them *after* its own site-packages, so `softeq` can only resolve
to the installed wheel: the editable install's import hook lives in a `.pth`
file of the project environment, and `.pth` files are only read in site
directories, never in directories that a `.pth` file adds.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("core", "properties", "adapters")
EXTRAS_ONLY = {"gymnasium", "dm-haiku", "optax", "ale-py"}


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def _working_tree_files() -> list[str]:
    listed = _run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO
    ).stdout
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def _build_offline_possible() -> bool:
    """True when this environment already has what pyproject's [build-system] asks for."""
    try:
        setuptools_major = int(metadata.version("setuptools").split(".")[0])
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return setuptools_major >= 69


def build_and_install(root: Path) -> dict:
    """Builds the wheel, installs it into a bare venv; returns the paths the checks need."""
    source = root / "source"
    files = _working_tree_files()
    for name in files:
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)

    dist = root / "dist"
    build_cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)]
    if _build_offline_possible():
        # no registry needed: build in this environment
        build_cmd.insert(4, "--no-isolation")
    _run(build_cmd, cwd=root, timeout=300)
    wheels = sorted(dist.glob("softeq-*.whl"))
    assert len(wheels) == 1, wheels

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=60)
    venv_python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv_python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheels[0]),
        ],
        timeout=120,
    )
    venv_site = Path(
        _run(
            [str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    project_site = Path(sysconfig.get_paths()["purelib"])
    (venv_site / "zz_project_dependencies.pth").write_text(f"{project_site}\n")
    return {
        "wheel": wheels[0],
        "files": files,
        "venv": venv,
        "python": venv_python,
        "site": venv_site,
        "project_site": project_site,
        "root": root,
    }


def wheel_contents_problems(built) -> list[str]:
    names = zipfile.ZipFile(built["wheel"]).namelist()
    shipped = {n for n in names if not re.match(r"softeq-[^/]+\.dist-info/", n)}
    expected = {
        f"softeq/{name}"
        for name in built["files"]
        if name.endswith(".py") and name.split("/")[0] in LAYERS
    }
    problems = []
    # every Python file of core/, properties/ and adapters/ (subpackages included) ...
    missing = sorted(expected - shipped)
    if missing:
        problems.append(f"modules missing from the wheel: {missing}")
    # ... and nothing from tests/, docs/, benchmarks/ or the repository root
    extra = sorted(shipped - expected)
    if extra:
        problems.append(f"unexpected files in the wheel: {extra}")
    for layer in LAYERS:
        if f"softeq/{layer}/__init__.py" not in shipped:
            problems.append(f"softeq/{layer}/__init__.py is not in the wheel")
    return problems


def requirement_problems(built) -> list[str]:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(wheel.read(meta_name).decode())
    requirements = meta.get_all("Requires-Dist") or []

    def name_of(requirement: str) -> str:
        return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    base = {name_of(r) for r in requirements if "extra ==" not in r}
    in_extras = {name_of(r) for r in requirements if "extra ==" in r}
    problems = []
    if not {"jax", "chex", "rlax"} <= base:
        problems.append(f"base requirements lack {sorted({'jax', 'chex', 'rlax'} - base)}")
    if base & EXTRAS_ONLY:
        problems.append(f"base requirements include {sorted(base & EXTRAS_ONLY)}")
    if not EXTRAS_ONLY <= in_extras:
        problems.append(f"no extra provides {sorted(EXTRAS_ONLY - in_extras)}")
    return problems


def _run_clean(built, argv: list[str]) -> subprocess.CompletedProcess:
    """`argv` outside the repository, without PYTHONPATH / PYTHONHOME leaking in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        argv, cwd=built["root"], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def import_problems(built) -> list[str]:
    probe = (
        "import json, sys\n"
        "import softeq.core, softeq.properties, softeq.adapters\n"
        "import jax.numpy as jnp\n"
        "v = softeq.core.soft_value(jnp.zeros(2), temperature=1.0, log_prior=jnp.zeros(2))\n"
        "print(json.dumps({'files': [m.__file__ for m in (softeq.core, softeq.properties,\n"
        "                   softeq.adapters)], 'value': float(v),\n"
        "                  'editable': '__editable___softeq_0_1_0_finder' in sys.modules}))\n"
    )
    result = _run_clean(built, [str(built["python"]), "-c", probe])
    if result.returncode != 0:
        return [f"importing the installed wheel failed:\n{result.stderr[-3000:]}"]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    problems = []
    if report["editable"]:
        problems.append("the editable install's import hook was active in the new environment")
    for path in report["files"]:
        if not Path(path).resolve().is_relative_to(built["site"].resolve()):
            problems.append(f"{path} was imported from outside the new environment")
    if abs(report["value"] - 0.6931471805599453) > 1e-6:  # log 2, in float32
        problems.append(f"soft_value from the wheel gave {report['value']}, expected log 2")
    return problems


def console_script_problems(built) -> list[str]:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        entry_name = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = wheel.read(entry_name).decode()
    match = re.search(r"^softeq\s*=\s*([\w.]+):(\w+)", entry_points, flags=re.MULTILINE)
    if not match:
        return [f"no `softeq` console script in entry_points.txt:\n{entry_points}"]
    problems = []
    module_path = "softeq/" + "/".join(match.group(1).split(".")[1:]) + ".py"
    if module_path not in names:
        problems.append(f"console script target {module_path} is not in the wheel")
    script = built["venv"] / "bin" / "softeq"
    if not script.is_file():
        problems.append("pip did not install the `softeq` script")
        return problems
    for args, expected in ((["--help"], "reproduce"), (["train", "--help"], "--total-steps")):
        ran = _run_clean(built, [str(script), *args])
        if ran.returncode != 0 or expected not in ran.stdout:
            problems.append(
                f"`softeq {' '.join(args)}` from the wheel: exit {ran.returncode}, "
                f"{ran.stderr[-500:]!r}"
            )
    return problems


def test_wheel_builds_installs_and_imports_from_a_clean_environment(tmp_path):
    # One test, one build (about 20 s): under pytest-xdist, separate tests would
    # each build their own wheel. Every check runs and all problems are reported.
    built = build_and_install(tmp_path)
    problems = [
        *wheel_contents_problems(built),
        *requirement_problems(built),
        *import_problems(built),
        *console_script_problems(built),
    ]
    assert problems == [], "\n".join(problems)
