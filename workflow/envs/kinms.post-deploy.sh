#!/usr/bin/env bash
# Install kinms_core (this checkout, two folders up) into the freshly made conda environment.
set -euo pipefail
python -m pip install --no-deps "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
