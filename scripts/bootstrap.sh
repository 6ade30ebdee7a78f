#!/usr/bin/env bash
# Installs everything yuqing needs on a fresh Debian machine and prints the venv path on the last line.
# Idempotent: system packages are installed only when missing; the virtualenv lives outside the clone,
# keyed by a hash of the dependency list, and is reused when it already exists.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
command -v runuser >/dev/null 2>&1 || need_apt+=(util-linux)
# Chinese labels in the alert mails' trend charts (alerts/chart.py): a CJK font found through fontconfig.
command -v fc-match >/dev/null 2>&1 || need_apt+=(fontconfig)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need_apt+=(fonts-noto-cjk)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing system packages: ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

python_bin="${YUQING_PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
hash=$("$python_bin" - <<'PY'
import hashlib, tomllib
d = tomllib.load(open("pyproject.toml", "rb"))
p = d["project"]
print(hashlib.sha256(repr((p["dependencies"], p["optional-dependencies"])).encode()).hexdigest()[:12])
PY
)
venv="${YUQING_VENV_ROOT:-$HOME/.cache/yuqing}/venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: building virtualenv $venv (first run downloads torch: several minutes)" >&2
  rm -rf "$venv"
  "$python_bin" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/python" - > "$venv/requirements.txt" <<'PY'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))
PY
  "$venv/bin/pip" install -q -r "$venv/requirements.txt" >&2
  touch "$venv/.complete"
fi
# The project itself, editable: installed again only when the clone moved or pyproject.toml changed (entry
# points), so an ordinary run prints nothing of pip's.
stamp="$(pwd -P) $(sha256sum pyproject.toml | cut -d' ' -f1)"
installed="$("$venv/bin/python" -I -c 'import importlib.util as u; s = u.find_spec("yuqing"); print(s.origin if s else "")')"
if [ "$(cat "$venv/.yuqing-editable" 2>/dev/null)" != "$stamp" ] || [ "$installed" != "$(pwd -P)/yuqing/__init__.py" ]; then
  # setuptools warns about the editable layout on every install: show pip's output only when it fails
  if ! pip_out="$("$venv/bin/pip" install -q --no-deps --no-build-isolation -e . 2>&1)"; then
    printf '%s\n' "$pip_out" >&2
    echo "bootstrap: installing the project into $venv failed (pip's output above)" >&2
    exit 1
  fi
  echo "$stamp" > "$venv/.yuqing-editable"
fi
echo "$venv"
