#!/usr/bin/env bash
# ferrodyn developer entry point.
#   ./dev.sh demo    install ferrodyn (and pinned torch) into a cached venv, then run the demo
#   ./dev.sh test    install, then run the whole test suite (pytest + cargo test), then a
#                    subset of it on every other supported CPython found (own venv each)
#   ./dev.sh lint    rustfmt, clippy, ruff (check + format), stub check of ferrodyn._core
#   ./dev.sh bench   install, then run the side-by-side benchmarks
#   ./dev.sh plan    print what setup would install, and why, without doing it
#   ./dev.sh install create or repair the venv only (no extension build)
#
# The base interpreter is $PYTHON (default python3.11, else python3), CPython 3.11, 3.12 or 3.13.
# The venv lives at $FERRODYN_VENV (default one per version: ~/.cache/ferrodyn-venv for 3.11,
# ~/.cache/ferrodyn-venv-<version> for 3.12 and 3.13) and is reused when it is complete and built for the
# current pins. What to install is decided from a stamp file in the
# venv holding a hash of the pins (ci/requirements.txt), pyproject.toml and the interpreter
# version; the stamp is written only after a successful install, so a half-built venv or one
# built for older pins is repaired on the next run.
set -euo pipefail
cd "$(dirname "$0")"

REQUIREMENTS=ci/requirements.txt
SUPPORTED_PYS="3.11 3.12 3.13"
# Set by check_python: the base interpreter, its version, the venv and its install stamp.
PY_BASE=""
PY_VER=""
VENV=""
STAMP=""

usage() {
    cat >&2 <<'EOF'
usage: ./dev.sh {demo|test|lint|bench|plan|install}
  demo   install ferrodyn into the cached venv and run its demo
  test   install, then run the whole test suite (pytest + cargo test); what CI runs
  lint   cargo fmt --check, cargo clippy -D warnings, ruff check, ruff format --check, stubtest
  bench  install, then run the pytest-benchmark suite
  plan   print what setup would do to the venv, and why, without doing it
  install  create or repair the venv only (no extension build)
  setup  install and build the extension only
  subset FILES...  install for $PYTHON, then run pytest on FILES only
environment: PYTHON (base interpreter, CPython 3.11, 3.12 or 3.13; default python3.11, else python3)
             FERRODYN_VENV (venv path; default ~/.cache/ferrodyn-venv for 3.11,
             ~/.cache/ferrodyn-venv-<version> otherwise)
             FERRODYN_OTHER_PYTHONS (versions whose subset `test` also runs, default "3.11 3.12 3.13"
             less the primary one; "none" skips them; a version not installed is skipped)
             FERRODYN_VERSION_SUBSET (the test files run on those versions)
EOF
}

die() {
    echo "[dev] error: $*" >&2
    exit 1
}

# The base interpreter: $PYTHON, else python3.11, else python3 (its version is checked next).
base_python() {
    local cand
    if [ -n "${PYTHON:-}" ]; then
        command -v "$PYTHON" >/dev/null 2>&1 || return 1
        echo "$PYTHON"
        return 0
    fi
    for cand in python3.11 python3; do
        command -v "$cand" >/dev/null 2>&1 || continue
        echo "$cand"
        return 0
    done
    return 1
}

check_python() {
    local py ver
    py="$(base_python)" || die "no Python interpreter '${PYTHON:-python3.11}' found: ferrodyn needs CPython 3.11, 3.12 or 3.13 (set PYTHON=/path/to/python3.11)"
    ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
        || die "'$py' does not run; ferrodyn needs CPython 3.11, 3.12 or 3.13 (set PYTHON=...)"
    case " $SUPPORTED_PYS " in
        *" $ver "*) ;;
        *) die "'$py' is Python $ver, but ferrodyn supports CPython 3.11, 3.12 and 3.13 only (set PYTHON=/path/to/python3.11)" ;;
    esac
    PY_BASE="$py"
    PY_VER="$ver"
    if [ "$ver" = "3.11" ]; then
        VENV="${FERRODYN_VENV:-$HOME/.cache/ferrodyn-venv}"
    else
        VENV="${FERRODYN_VENV:-$HOME/.cache/ferrodyn-venv-$ver}"
    fi
    STAMP="$VENV/.ferrodyn-stamp"
}

check_rust() {
    command -v cargo >/dev/null 2>&1 \
        || die "no Rust toolchain (cargo) on PATH: ferrodyn's core is a Rust extension; install Rust from https://rustup.rs and retry"
}

# The hash the stamp must hold for the venv to be current.
wanted_stamp() {
    {
        cat "$REQUIREMENTS" pyproject.toml
        echo "python $PY_VER"
    } | sha256sum | cut -d' ' -f1
}

# Prints one line: "ok", "create <why>" or "install <why>". Reads only files, runs no pip.
decide() {
    if [ ! -e "$VENV" ]; then
        echo "create no venv at $VENV yet"
    elif [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "create the venv at $VENV is broken (its python does not run)"
    elif [ ! -f "$STAMP" ]; then
        echo "install the venv at $VENV has no install stamp (a new or interrupted install)"
    elif [ "$(cat "$STAMP")" != "$(wanted_stamp)" ]; then
        echo "install the venv at $VENV was built for other pins ($REQUIREMENTS or pyproject.toml changed)"
    else
        echo "ok"
    fi
}

# pip, overridable for tests of the install decision (FERRODYN_PIP="stub-command").
pip_cmd() {
    if [ -n "${FERRODYN_PIP:-}" ]; then
        # shellcheck disable=SC2086
        $FERRODYN_PIP "$@"
    else
        "$VENV/bin/python" -m pip "$@"
    fi
}

install_requirements() {
    local decision action why
    decision="$(decide)"
    action="${decision%% *}"
    why="${decision#* }"
    case "$action" in
        ok) return 0 ;;
        create)
            echo "[dev] creating a venv with $PY_BASE: $why"
            rm -rf "$VENV"
            mkdir -p "$(dirname "$VENV")"
            "$PY_BASE" -m venv "$VENV" || die "could not create a venv at $VENV with $PY_BASE"
            why="a new venv"
            ;;
    esac
    echo "[dev] installing the pinned requirements ($REQUIREMENTS: torch, test tools) into $VENV because: $why"
    echo "[dev] torch is a large download the first time; pip shows its progress"
    rm -f "$STAMP"
    pip_cmd install --upgrade pip
    pip_cmd install -r "$REQUIREMENTS"
    wanted_stamp >"$STAMP"
}

build_extension() {
    check_rust
    # One cargo target folder per interpreter version, so switching versions does not
    # rebuild the other's artifacts (3.11 keeps the default target/).
    local target="${CARGO_TARGET_DIR:-}"
    if [ -z "$target" ] && [ "$PY_VER" != "3.11" ]; then
        target="target/py${PY_VER/./}"
    fi
    echo "[dev] building the Rust extension for Python $PY_VER (maturin develop --release)"
    CARGO_TARGET_DIR="${target:-target}" VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" \
        "$VENV/bin/maturin" develop --release -q
}

# A working interpreter for CPython $1 (e.g. 3.12): python3.12 on PATH when it runs (a pyenv
# shim may exist and refuse), else a pyenv install. Prints nothing when there is none.
find_python_version() {
    local ver="$1" cand
    for cand in "python$ver" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$ver".*/bin/"python$ver" \
        /root/.pyenv/versions/"$ver".*/bin/"python$ver"; do
        [ -n "$cand" ] || continue
        if "$cand" -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "'"$ver"'"' >/dev/null 2>&1; then
            command -v "$cand"
            return 0
        fi
    done
    return 0
}

# The test files run on the other supported versions: the version-dependent layers (bytecode
# shapes, frame hook, splits and resume functions, generators, exceptions, calls) and the real
# model suite. The full suite runs on the primary interpreter. FERRODYN_VERSION_SUBSET
# replaces the list.
VERSION_SUBSET="${FERRODYN_VERSION_SUBSET:-tests/test_python_versions.py tests/test_bytecode_shapes.py tests/test_frame_hook.py
    tests/test_graph_breaks.py tests/test_resume_liveness.py tests/test_functions.py
    tests/test_exceptions.py tests/test_generator_methods.py tests/test_call_shapes.py
    tests/test_checklist_classes.py tests/test_guards_recompile.py tests/test_model_suite.py}"

# The other supported versions found on this machine, one "version interpreter" pair per
# line. FERRODYN_OTHER_PYTHONS picks them ("3.12 3.13"; "none" skips; default: the supported
# ones other than the primary one).
other_versions() {
    local primary="$PY_VER" wanted ver py
    wanted="${FERRODYN_OTHER_PYTHONS:-$SUPPORTED_PYS}"
    [ "$wanted" = "none" ] && return 0
    for ver in $wanted; do
        [ "$ver" = "$primary" ] && continue
        py="$(find_python_version "$ver")"
        if [ -z "$py" ]; then
            echo "[dev] no CPython $ver on this machine: its test subset is skipped" >&2
            continue
        fi
        echo "$ver $py"
    done
}

# Venv and extension for every other version, one after the other (run in the background
# while the primary suite runs: installing torch is mostly download and disk, and the build
# takes the core pytest leaves idle).
prepare_other_versions() {
    local ver py
    while read -r ver py; do
        [ -n "$ver" ] || continue
        echo "[dev] CPython $ver ($py): venv and extension"
        PYTHON="$py" FERRODYN_VENV="" "./$(basename "$0")" setup || return 1
    done < <(other_versions)
}

# After the primary run: the subset on every other version (prepared already).
test_other_versions() {
    local ver py
    while read -r ver py; do
        [ -n "$ver" ] || continue
        echo "[dev] CPython $ver ($py): the version subset"
        # shellcheck disable=SC2086
        PYTHON="$py" FERRODYN_VENV="" "./$(basename "$0")" subset $VERSION_SUBSET || return 1
    done < <(other_versions 2>/dev/null)
}

setup() {
    check_python
    install_requirements
    build_extension
}

run_pytest() {
    # pytest's exit 5 (no tests collected) is a failure here, like any other non-zero exit.
    "$VENV/bin/python" -m pytest "$@" -p no:cacheprovider
}

lint() {
    setup
    local bin="$VENV/bin"
    echo "[dev] cargo fmt --check"
    cargo fmt --all -- --check
    echo "[dev] cargo clippy --all-targets -- -D warnings"
    PYO3_PYTHON="$bin/python" cargo clippy --quiet --all-targets -- -D warnings
    echo "[dev] ruff check"
    "$bin/ruff" check pysrc tests benches
    echo "[dev] ruff format --check"
    "$bin/ruff" format --check pysrc tests benches
    echo "[dev] stubtest ferrodyn._core (the extension against pysrc/ferrodyn/_core.pyi)"
    "$bin/python" -m mypy.stubtest ferrodyn._core
    echo "[dev] lint: all clean"
}

cmd="${1:-}"
case "$cmd" in
    demo)
        setup
        exec "$VENV/bin/python" -m ferrodyn demo "${@:2}"
        ;;
    test)
        setup
        others_log="$(mktemp)"
        prepare_other_versions >"$others_log" 2>&1 &
        others_pid=$!
        echo "[dev] pytest (the other versions are set up meanwhile, log: $others_log)"
        pytest_rc=0
        run_pytest tests "${@:2}" || pytest_rc=$?
        others_rc=0
        wait "$others_pid" || others_rc=$?
        echo "[dev] setting up the other versions:"
        cat "$others_log"
        [ "$pytest_rc" = 0 ] || exit "$pytest_rc"
        [ "$others_rc" = 0 ] || die "setting up another Python version failed (above)"
        # The other versions before cargo test: its byte-for-byte round trips then find their
        # venvs and round-trip torch's modules on every version too.
        test_other_versions
        echo "[dev] cargo test"
        # A fixed hash seed: two guard tests count exact dict lookups through a key that
        # collides with hash('a'); with randomized string hashing the probe order varies.
        PYTHONHASHSEED=0 PYO3_PYTHON="$VENV/bin/python" cargo test --quiet
        ;;
    setup)
        setup
        ;;
    subset)
        setup
        echo "[dev] pytest on Python $PY_VER: ${*:2}"
        run_pytest "${@:2}"
        ;;
    lint)
        lint
        ;;
    bench)
        setup
        "$VENV/bin/python" -m pytest benches -q -p no:cacheprovider --benchmark-only "${@:2}"
        ;;
    plan)
        check_python
        decide
        ;;
    install)
        check_python
        install_requirements
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        [ -n "$cmd" ] && echo "[dev] unknown command: '$cmd'" >&2
        usage
        exit 2
        ;;
esac
