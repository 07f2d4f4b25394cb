"""The daemon loads with numpy + onnxruntime only: no training or optional protocol libraries."""

from __future__ import annotations

import subprocess
import sys


def test_gateway_import_graph_is_lean() -> None:
    code = (
        "import sys, edgegw.gateway, edgegw.cli; "
        "print(','.join(m for m in ('sklearn', 'skl2onnx', 'onnx', 'pandas', 'asyncua', 'aiocoap', 'amqtt', 'aiohttp') "
        "if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == ""
