# Sourced by scripts/test.sh and scripts/demo.sh (which set -euo pipefail): go to the repository root, create or
# reuse the virtual environment and install densevit into it (editable, with the dev extras); then `python`,
# `pip`, `ruff` and `pytest` are the environment's.
#
# DENSEVIT_VENV  where the environment lives (default: .venv in the repository; relative paths are taken from
#                the repository root). It is reused while pyproject.toml is unchanged: the sha256 of the
#                pyproject.toml it was installed from is kept in its stamp file.
# PYTHON         the interpreter that creates it (default: python3; densevit needs Python >= 3.10).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
VENV="${DENSEVIT_VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="$REPO_ROOT/$VENV"
STAMP="$VENV/densevit-install.sha256"

_sha256() {
    "${PYTHON:-python3}" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

_setup_env() {
    local want
    want="$(_sha256 pyproject.toml)"
    mkdir -p "$(dirname "$VENV")"
    # one set-up at a time when several runs share an environment (CI caches); flock is in util-linux
    if command -v flock >/dev/null; then
        exec 9>"$VENV.lock"
        flock 9
    fi
    if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        # An editable install points at the checkout it was made from; a cached environment may have been made
        # from another one (CI checks out anew), so it is re-pointed here (a second, without dependencies).
        local installed
        # (-I: leave the current directory off sys.path, so the import shows what is installed)
        installed="$("$VENV/bin/python" -I -c 'import densevit, pathlib; print(pathlib.Path(densevit.__file__).resolve().parents[1])' \
            2>/dev/null || true)"
        if [[ "$installed" != "$REPO_ROOT" ]]; then
            echo "densevit: re-pointing $VENV at $REPO_ROOT"
            "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
        fi
        echo "densevit: reusing $VENV (pyproject.toml unchanged)"
    else
        echo "densevit: installing into $VENV (first run or pyproject.toml changed; torch alone is a few GB)"
        rm -f "$STAMP"
        if [[ ! -x "$VENV/bin/python" ]]; then
            "${PYTHON:-python3}" -m venv --clear "$VENV"
        fi
        "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -e ".[dev]"
        echo "$want" >"$STAMP"
    fi
    if command -v flock >/dev/null; then
        exec 9>&-
    fi
}

_setup_env
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
