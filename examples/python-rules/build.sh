#!/usr/bin/env bash
# Builds Acme's Python rules (acme_rules.py beside this script) into a berth rules
# component with componentize-py, for the world `rules` of wit/berth-rules@0.2.0:
# ${CARGO_TARGET_DIR:-<repo>/target}/python-rules.wasm, whose path is the last line printed.
#
# componentize-py comes from PyPI, pinned, into a virtualenv under
# <target>/componentize-py/ on first use (python3 with venv and pip is all it needs).
# The build is skipped while the component is newer than its inputs; the bindings are
# generated inside the component, never into the source tree.
set -euo pipefail

version=0.25.1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$target/componentize-py"
target=$(cd "$target" && pwd)
wit=$root/wit/berth-rules@0.2.0
venv=$target/componentize-py/venv-$version
out=$target/python-rules.wasm

# One build at a time (tests in several processes may ask at once).
exec 9>"$target/componentize-py/lock"
flock 9

if [[ ! -x $venv/bin/componentize-py ]]; then
    echo "python-rules: installing componentize-py $version from PyPI into $venv" \
        "(once; about 70 MB, 5-30 s)" >&2
    rm -rf "$venv"
    command -v python3 >/dev/null || { echo "python-rules: needs python3" >&2; exit 1; }
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian ships venv apart from python3 (python3-venv).
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            echo "python-rules: installing Debian's python3-venv (once)" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2 ||
                { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2; }
        fi
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$version" >&2
fi

# Up to date: no input (the app, the WIT, this script with its pin) newer than the output.
if [[ -f $out && -z $(find "$here" "$wit" -newer "$out" -type f -print -quit) ]]; then
    echo "$out"
    exit 0
fi

echo "python-rules: building $out (about 10 s)" >&2
# From a copy of the app: componentize-py leaves Python's bytecode cache beside the
# sources it runs. It bundles the modules the app imports (the standard library's, here),
# looked for in that copy and in our virtualenv, not in one the caller may have active.
app=$target/componentize-py/app
rm -rf "$app"
mkdir -p "$app"
cp -p "$here"/*.py "$app/"
(cd "$app" && env -u VIRTUAL_ENV "$venv/bin/componentize-py" --wit-path "$wit" --world rules \
    componentize --python-path "$app" acme_rules --output "$out.tmp") >&2
mv "$out.tmp" "$out"
echo "$out"
