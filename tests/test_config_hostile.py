"""Hostile and broken configs: `check` and `run` give the same verdict, exit 78, and name
`file:line: field.path: what`, without a traceback, a hang or a huge allocation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edgegw.cli import main
from tests.helpers import EXAMPLE

EX = EXAMPLE.read_text()
UPSTREAM = "upstream: {{host: 127.0.0.1, port: 1883, outbox: {{path: {tmp}/o.db{box}}}{extra}}}\n"


def upstream(extra: str = "", box: str = "") -> Callable[[str, Path], str]:
    return lambda text, tmp: text + UPSTREAM.format(tmp=tmp, extra=extra, box=box)


def sub(old: str, new: str) -> Callable[[str, Path], str]:
    def edit(text: str, tmp: Path) -> str:
        was = old.format(tmp=tmp)
        assert was in text
        return text.replace(was, new.format(tmp=tmp), 1)

    return edit


def alerts_topic(template: str) -> Callable[[str, Path], str]:
    return lambda text, tmp: text.replace('topic: "alerts/{site}/{asset}/{kind}/{source}"', f'topic: "{template}"')


def laughs(text: str, tmp: Path) -> str:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(9):
        bomb += f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 8) + "]\n"
    return bomb + text


# id -> (edit of the example text, what the single problem must say: field path and words)
CASES: dict[str, tuple[Callable[[str, Path], str], str]] = {
    "window_inf": (sub("window_s: 30", "window_s: .inf"), "profiles.pump.window_s: Input should be a finite number"),
    "window_huge": (sub("window_s: 30", "window_s: 1e9"), "profiles.pump.window_s: Input should be less than"),
    "hop_tiny": (sub("hop_s: 1", "hop_s: 1e-300"), "profiles.pump.hop_s: Input should be greater than"),
    "hi_nan": (sub("hi: 7.1", "hi: .nan"), "profiles.pump.signals.vibration.hi: Input should be a finite number"),
    "range_inf": (
        sub("range: [0, 100]", "range: [0, .inf]"),
        "profiles.pump.signals.vibration.range.1: Input should be a finite",
    ),
    "too_many_buckets": (
        lambda t, tmp: sub("window_s: 30", "window_s: 3600")(t, tmp).replace("hop_s: 1", "hop_s: 0.5"),
        "profiles.pump: window_s / hop_s is 7,200 buckets",
    ),
    "site_wildcard": (sub("site: plant-a", "site: 'a/#'"), "gateway.site: 'a/#': no '/', '+', '#'"),
    "gateway_id_wildcard": (sub("id: gw-pumphouse-1", "id: 'gw/a#+'"), "gateway.id: 'gw/a#+': no '/'"),
    "gateway_id_empty": (sub("id: gw-pumphouse-1", "id: ''"), "gateway.id: must not be empty"),
    "asset_plus": (sub("{{id: pump-4, profile: pump}}", "{{id: 'pump+4', profile: pump}}"), "assets.3.id: 'pump+4'"),
    "alerts_topic_typo": (
        alerts_topic("alerts/{site}/{assett}/{kind}/{source}"),
        "alerts.topic: 'alerts/{site}/{assett}/{kind}/{source}': unknown placeholder {assett}",
    ),
    "alerts_topic_missing_source": (
        alerts_topic("alerts/{site}/{asset}/{kind}"),
        "alerts.topic: 'alerts/{site}/{asset}/{kind}': needs {source}",
    ),
    "alerts_topic_wildcard": (
        alerts_topic("alerts/#/{asset}/{kind}/{source}"),
        "alerts.topic: 'alerts/#/{asset}/{kind}/{source}': no MQTT wildcards",
    ),
    "alerts_topic_format_spec": (alerts_topic("alerts/{site}/{asset!r}/{kind}/{source}"), "unknown placeholder {asset!r}"),
    "alerts_topic_brace": (
        alerts_topic("alerts/{site}/{asset}/{kind}/{source"),
        "alerts.topic: 'alerts/{site}/{asset}/{kind}/{source'",
    ),
    "rollups_topic_typo": (
        sub('topic: "rollups/{{site}}/{{asset}}"', 'topic: "rollups/{{site}}/{{pump}}"'),
        "rollups.topic: 'rollups/{site}/{pump}': unknown placeholder {pump}",
    ),
    "rollups_topic_no_asset": (
        sub('topic: "rollups/{{site}}/{{asset}}"', 'topic: "rollups/{{site}}"'),
        "rollups.topic: 'rollups/{site}': needs {asset}",
    ),
    "outbox_max_inf": (upstream(box=", max_mb: .inf"), "upstream.outbox.max_mb: Input should be a finite number"),
    "password_dev_zero": (
        sub("  # username: edgegw", "  username: edgegw\n  password_file: /dev/zero"),
        "mqtt.password_file: /dev/zero is not a regular file",
    ),
    "password_huge": (
        sub("  # username: edgegw", "  username: edgegw\n  password_file: {tmp}/huge"),
        "mqtt.password_file: {tmp}/huge is larger than 64 KiB",
    ),
    "ca_missing": (
        sub("  port: 1883\n", "  port: 1883\n  tls: {{ca_file: {tmp}/missing.pem}}\n"),
        "mqtt.tls.ca_file: cannot read {tmp}/missing.pem: No such file",
    ),
    "ca_device": (
        sub("  port: 1883\n", "  port: 1883\n  tls: {{ca_file: /dev/zero}}\n"),
        "mqtt.tls.ca_file: /dev/zero is not a regular file",
    ),
    "ca_not_pem": (
        sub("  port: 1883\n", "  port: 1883\n  tls: {{ca_file: {tmp}/huge}}\n"),
        "mqtt.tls: cannot build the TLS context",
    ),
    "upstream_readings_unknown": (
        lambda t, tmp: upstream()(t, tmp).replace("}}\n", "}, send: {readings: [nope]}}\n"),
        "upstream.send.readings: no profile has signal(s) nope",
    ),
    "upstream_ca_missing": (
        lambda t, tmp: upstream()(t, tmp).replace("}}\n", f"}}, tls: {{ca_file: {tmp}/no-ca.pem}}}}\n"),
        "upstream.tls.ca_file: cannot read",
    ),
    "outbox_parent_is_file": (
        lambda t, tmp: upstream()(t, tmp).replace("/o.db", "/huge/o.db"),
        "upstream.outbox.path: cannot create or write",
    ),
    "model_not_a_model": (sub("model: models/pump", "model: {tmp}"), "profiles.pump.model: {tmp}"),
    "state_dir_missing": (
        sub("  site: plant-a", "  site: plant-a\n  state_dir: {tmp}/nowhere"),
        "gateway.state_dir: {tmp}/nowhere is not a writable directory",
    ),
    "too_deep": (lambda t, tmp: t + "x: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 32 levels"),
    "very_deep": (lambda t, tmp: t + "x: " + "[" * 1000 + "]" * 1000 + "\n", "nest"),
    "alias_bomb": (laughs, "more than 5,000,000 values once aliases are expanded"),
    "alias_undefined": (lambda t, tmp: t + "x: *nope\n", "alias *nope names no anchor"),
    "duplicate_key": (sub("  port: 1883\n", "  port: 1883\n  port: 1884\n"), "duplicate key 'port'"),
    "two_documents": (lambda t, tmp: t + "---\na: 1\n", "more than one YAML document"),
    "unknown_tag": (sub("hop_s: 1", "hop_s: !!python/object 1"), "unsupported tag"),
    "top_level_list": (lambda t, tmp: "- 1\n- 2\n", "the top level must be a mapping"),
    "window_memory": (
        lambda t, tmp: sub("window_s: 30", "window_s: 3600")(t, tmp).replace(
            "assets:\n", "assets:\n" + "".join(f"  - {{id: p{i}, profile: pump}}\n" for i in range(2000))
        ),
        "profiles.pump: 2004 asset(s) x 6 signal(s) x 3600 buckets",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_config_same_verdict_from_check_and_run(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit, want = CASES[case]
    (tmp_path / "huge").write_bytes(b"x" * (70 * 1024))
    (tmp_path / "model.json").write_text('{"format": "edgegw-model/1", "name": "x"')
    f = tmp_path / "c.yaml"
    f.write_text(edit(EX, tmp_path))
    rc = main(["check", "-c", str(f)])
    err = capsys.readouterr().err
    assert rc == 78, err  # (else `run` below would start a gateway)
    rc_run = main(["run", "-c", str(f)])
    err_run = capsys.readouterr().err
    assert rc_run == 78, err_run
    assert err == err_run
    problems = [line.strip() for line in err.splitlines()[1:] if not line.startswith("warning")]
    assert len(problems) == 1, err
    assert problems[0].startswith(f"{f}:"), err
    assert want.replace("{tmp}", str(tmp_path)) in problems[0], err


@pytest.mark.parametrize(
    "data, what",
    [
        (EX.encode().replace(b"site: plant-a", b"site: plant-\xff"), ":6: not UTF-8 text (byte 0xff)"),
        (b"a: 1\n\x00\n", "YAML syntax"),
    ],
)
def test_bytes_that_are_not_a_config(data: bytes, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yaml"
    f.write_bytes(data)
    assert main(["check", "-c", str(f)]) == 78
    assert what in capsys.readouterr().err


def test_fifo_and_directory_are_refused_without_waiting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")  # nobody writes: reading it would wait for ever
    for p in (tmp_path / "fifo.yaml", tmp_path):
        assert main(["check", "-c", str(p)]) == 78
        assert f"{p}: not a regular file" in capsys.readouterr().err


def test_numbers_and_words_follow_yaml_1_2(tmp_path: Path) -> None:
    from edgegw.config import yamltree

    got = yamltree.load("a: [1, 0x1f, 0o17, 1e3, 1_000, .5, -.inf, yes, on, no, ~, null, '5', !!str 5, !!float 2, true]")
    assert got["a"][:7] == [1, 31, 15, 1000.0, 1000, 0.5, float("-inf")]
    assert got["a"][7:] == ["yes", "on", "no", None, None, "5", "5", 2.0, True]
    merged = yamltree.load("base: &b {x: 1, y: 2}\nthis:\n  <<: *b\n  y: 3\n")
    assert merged["this"] == {"x": 1, "y": 3}


def test_deprecated_key_warns_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(EX.replace("    hop_s: 1\n", "    hop_s: 1\n    max_rate_hz: 10\n"))
    line = next(i for i, t in enumerate(f.read_text().splitlines(), 1) if "max_rate_hz" in t)
    assert main(["check", "-c", str(f)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {f}:{line}: profiles.pump.max_rate_hz: deprecated and ignored" in err


def test_upstream_protocol_5_as_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(EX + UPSTREAM.format(tmp=tmp_path, extra=", protocol: 5", box=""))
    assert main(["check", "-c", str(f)]) == 0, capsys.readouterr().err
    from edgegw.config import load_config

    assert load_config(f).upstream.protocol == "5"  # type: ignore[union-attr]


def test_missing_source_library_is_one_line_and_78(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(EX.replace("sources:\n", "sources:\n  - {type: coap, mode: server, port: 5999}\n", 1))
    code = (
        "import sys; sys.modules['aiocoap'] = None; from edgegw.cli import main; "
        f"raise SystemExit(main([sys.argv[1], '-c', {str(f)!r}, '--set', 'mqtt.port=1']))"
    )
    for verb in ("check", "run"):
        r = subprocess.run([sys.executable, "-c", code, verb], capture_output=True, text=True, timeout=60)
        assert r.returncode == 78, r.stderr
        assert "Traceback" not in r.stderr
        assert "sources.0.type: coap sources need the aiocoap library: pip install 'edgegw[coap]'" in r.stderr


def test_outbox_held_by_another_process_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import fcntl

    f = tmp_path / "c.yaml"
    f.write_text(EX + UPSTREAM.format(tmp=tmp_path, extra="", box=""))
    with open(tmp_path / "o.db.lock", "ab") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["check", "-c", str(f)]) == 78
    assert "upstream.outbox.path: " in capsys.readouterr().err
    assert main(["check", "-c", str(f)]) == 0  # released: fine again, and check created nothing
    assert not (tmp_path / "o.db").exists()


def test_many_assets_check_in_reasonable_time(tmp_path: Path) -> None:
    """100k assets: the YAML is read by libyaml and the window memory is refused by name (no 6 GB allocation)."""
    assets = "".join(f"  - {{id: p{i}, profile: pump}}\n" for i in range(100_000))
    f = tmp_path / "c.yaml"
    f.write_text(EX.replace("assets:\n", "assets:\n" + assets, 1))
    from edgegw.config import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "profiles.pump: 100004 asset(s)" in e.value.problems[0]
