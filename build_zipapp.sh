#!/usr/bin/env bash
# Build dagu.pyz: the dagu package plus PyYAML vendored as pure Python, in one zipapp.
#
#   bash build_zipapp.sh [OUTPUT]        (default: dagu.pyz at the project root)
#
# PyYAML comes from the installed `yaml` package when there is one (offline builds), else from
# `pip download pyyaml`. Only its .py files go in: no _yaml C extension, so the archive runs on
# any CPython >= 3.11 as `python3 -I -S dagu.pyz`. Entries are sorted and carry a fixed timestamp,
# so the same inputs give the same bytes. Modules are shipped as source plus unchecked-hash .pyc
# files next to them (zipimport cannot cache bytecode, so without them every start would compile
# everything); a Python whose bytecode magic differs ignores those and compiles the source.
# PYTHON=... picks the interpreter that builds (default python3); DAGU_PYZ_NO_PYC=1 leaves the
# .pyc files out.
set -euo pipefail

PYTHON=${PYTHON:-python3}
out=${1:-}
if [[ -n $out && $out != /* ]]; then
    out="$PWD/$out"
fi
cd "$(dirname "${BASH_SOURCE[0]}")"
out=${out:-$PWD/dagu.pyz}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dagu-zipapp.XXXXXX")
partial="$out.$$.tmp"
trap 'rm -rf "$tmp" "$partial"' EXIT

# Where PyYAML's pure-Python sources come from: an installed package directory, or a downloaded
# wheel/sdist. The helper prints "dir|archive<TAB>path<TAB>license path or empty".
yaml_source=$("$PYTHON" - <<'EOF' 2>/dev/null || true
import os
import yaml
d = os.path.dirname(yaml.__file__)
needed = ("__init__.py", "loader.py", "scanner.py", "parser.py", "constructor.py")
if all(os.path.isfile(os.path.join(d, n)) for n in needed):
    lic = ""
    try:
        import importlib.metadata as md
        for f in md.distribution("PyYAML").files or ():
            if os.path.basename(str(f)).upper().startswith(("LICENSE", "COPYING")):
                lic = str(f.locate())
                break
    except Exception:
        pass
    print(f"dir\t{d}\t{lic}")
EOF
)
if [[ -z $yaml_source ]]; then
    echo "build_zipapp: PyYAML is not installed for $PYTHON; downloading it with pip" >&2
    if "$PYTHON" -m pip download -q --no-deps --disable-pip-version-check -d "$tmp/dl" 'pyyaml>=6' >&2; then
        archive=$(find "$tmp/dl" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' \) | head -n 1)
        [[ -n $archive ]] && yaml_source=$(printf 'archive\t%s\t' "$archive")
    fi
fi
if [[ -z $yaml_source ]]; then
    echo "build_zipapp: cannot vendor PyYAML: it is not importable by $PYTHON and 'pip download pyyaml' failed." >&2
    echo "build_zipapp: install it ($PYTHON -m pip install pyyaml) or give network access to PyPI." >&2
    exit 1
fi

"$PYTHON" - "$out" "$partial" "$tmp" "$yaml_source" <<'EOF'
import io, os, py_compile, re, sys, tarfile, zipfile

out, partial, tmp, yaml_source = sys.argv[1:5]
kind, yaml_path, license_path = (yaml_source.split("\t") + ["", ""])[:3]
with_pyc = os.environ.get("DAGU_PYZ_NO_PYC", "") in ("", "0")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__", "tests", "test"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dylib", "~", ".swp", ".orig", ".rej")

entries: dict[str, bytes] = {}  # archive name -> contents

# The dagu package: sources and data files (the UI's static files), nothing compiled.
for root, dirs, files in os.walk("dagu"):
    dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
    for name in files:
        if name.startswith(".") or name.endswith(SKIP_SUFFIXES):
            continue
        path = os.path.join(root, name)
        with open(path, "rb") as f:
            entries[path.replace(os.sep, "/")] = f.read()

# PyYAML: its top-level yaml/*.py only (the C extension is skipped), plus its license.
yaml_files: dict[str, bytes] = {}
license_text = None
if kind == "dir":
    for name in os.listdir(yaml_path):
        if name.endswith(".py"):
            with open(os.path.join(yaml_path, name), "rb") as f:
                yaml_files[name] = f.read()
    if license_path and os.path.isfile(license_path):
        with open(license_path, "rb") as f:
            license_text = f.read()
elif yaml_path.endswith(".whl"):
    with zipfile.ZipFile(yaml_path) as whl:
        for name in whl.namelist():
            if re.fullmatch(r"yaml/[^/]+\.py", name):
                yaml_files[name[5:]] = whl.read(name)
            elif re.fullmatch(r"[^/]+\.dist-info/(licenses/)?LICENSE[^/]*", name, re.I):
                license_text = whl.read(name)
else:  # sdist: PyYAML keeps the sources under lib/yaml/
    with tarfile.open(yaml_path) as sdist:
        for member in sdist.getmembers():
            if not member.isfile():
                continue
            if re.fullmatch(r"[^/]+/lib/yaml/[^/]+\.py", member.name):
                yaml_files[member.name.rsplit("/", 1)[1]] = sdist.extractfile(member).read()
            elif re.fullmatch(r"[^/]+/LICENSE", member.name):
                license_text = sdist.extractfile(member).read()
if "__init__.py" not in yaml_files:
    sys.exit(f"build_zipapp: no yaml/__init__.py found in {yaml_path}")
for name, data in yaml_files.items():
    entries[f"yaml/{name}"] = data
if license_text is not None:
    entries["yaml/LICENSE"] = license_text

# The entry point: zipapp's own `-m` template drops main()'s return value; this exits with it.
entries["__main__.py"] = (
    b'"""dagu.pyz entry point: run the CLI and exit with its status."""\n'
    b"import sys\n\nfrom dagu.cli import main\n\nsys.exit(main())\n"
)

if with_pyc:
    # Unchecked-hash pycs: valid without source mtimes, byte-identical across builds.
    src_dir = os.path.join(tmp, "src")
    for name in [n for n in entries if n.endswith(".py")]:
        src = os.path.join(src_dir, name)
        os.makedirs(os.path.dirname(src), exist_ok=True)
        with open(src, "wb") as f:
            f.write(entries[name])
        cfile = src + "c"
        py_compile.compile(src, cfile=cfile, dfile=name, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with open(cfile, "rb") as f:
            entries[name + "c"] = f.read()

with open(partial, "wb") as raw:
    raw.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name], compresslevel=9)
os.chmod(partial, 0o755)
os.replace(partial, out)
print(f"{out}: {os.path.getsize(out)} bytes "
      f"({len(entries)} files; PyYAML from {yaml_path}{'' if with_pyc else '; no .pyc'})")
EOF
