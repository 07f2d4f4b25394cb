"""model.json's one schema: it reads the shipped model back to the same text, and a wrong field is
refused by `edgegw check` naming the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgegw.cli import main
from edgegw.engine.modelmeta import META_FILE, MetaError, ModelMeta, dumps, read_meta
from tests.helpers import EXAMPLE

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "pump"


def test_the_shipped_model_reads_back_to_the_same_text() -> None:
    meta = read_meta(SHIPPED)
    assert meta.failure_risk is not None and meta.failure_risk.classes[0] == "0"
    assert meta.model_alarms.delays(2.0) == (6.0, 20.0)  # delays in hops follow the serving hop
    assert dumps(meta) == (SHIPPED / META_FILE).read_text()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["anomaly"].update(threshold="high"), "anomaly.threshold: expected a number, got 'high'"),
        (lambda d: d.update(signals="vibration"), "signals: expected a list"),
        (lambda d: d["anomaly"]["training_stats"].pop("std"), "anomaly.training_stats: lacks 'std'"),
        (lambda d: d.pop("feature_names"), "lacks 'feature_names'"),
        (lambda d: d["model_alarms"].update(on_hops="3"), "model_alarms holds non-numeric delays"),
    ],
)
def test_a_wrong_field_is_named(edit, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = json.loads((SHIPPED / META_FILE).read_text())
    edit(d)
    with pytest.raises(MetaError, match=message):
        ModelMeta.from_dict(d)
    model = tmp_path / "m"
    shutil.copytree(SHIPPED, model)
    (model / META_FILE).write_text(json.dumps(d))
    rc = main(["check", "-c", str(EXAMPLE), "--set", f"profiles.pump.model={model}"])
    err = capsys.readouterr().err
    assert rc == 78, err
    assert f"profiles.pump.model: {model}: {model / META_FILE}: {message}" in err, err
