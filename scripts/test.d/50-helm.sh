#!/usr/bin/env bash
# The helm chart check (lint, schema, render, Kubernetes 1.30 validation): scripts/check-helm.sh.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/check-helm.sh" 1.30.0
