#!/usr/bin/env bash
# Prepares what the test suite needs beyond npm packages, idempotently (npm's `pretest`):
#  - Debian: redis-server (distributed sweep queue) and chromium (HTML report rendering);
#  - Python in .venv: test oracles (numpy, pyarrow, scikit-learn) and the MLflow server;
#  - Python in .venv-torch: PyTorch for the training benchmark's reference step;
#  - the native tensorflow backend (`egmf backend install tensorflow`).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "test-env: please install the Debian packages: ${need_apt[*]}" >&2
    exit 1
  fi
fi

stamp=.venv/.requirements-test.txt
if [ ! -x .venv/bin/python ] || ! cmp -s requirements-test.txt "$stamp"; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
  cp requirements-test.txt "$stamp"
fi

# PyTorch for the training benchmark's reference step (and its parity test), in its own venv.
stamp=.venv-torch/.requirements-bench.txt
if [ ! -x .venv-torch/bin/python ] || ! cmp -s requirements-bench.txt "$stamp"; then
  python3 -m venv .venv-torch
  .venv-torch/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
  cp requirements-bench.txt "$stamp"
fi

# The native tensorflow backend (tfjs-node built against the PyPI TensorFlow wheel); idempotent.
node bin/egmf.mjs backend install tensorflow
