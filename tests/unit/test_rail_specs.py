"""The stand-ins find the rails' specs by setting, beside the repo, or by a verified
one-time download, and say clearly when none works."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors.rails.sandbox import specs
from connectors.rails.sandbox.specs import PUBLISHED, SpecNotFound, spec_file

NAME = "paypal/invoicing_v2.json"


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No setting, no shared/ beside the repo, an empty cache."""
    monkeypatch.delenv("RAILYARD_RAIL_SPECS", raising=False)
    monkeypatch.setattr(specs, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(scope="module")
def published() -> bytes:
    """The pinned file's real bytes, found as the stand-ins find it (the setting, or
    ``shared/`` beside the repo): module-scoped, so before :func:`nowhere` hides both."""
    return spec_file(NAME).read_bytes()


def serve(body: bytes) -> Iterator[str]:
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "paypal").mkdir()
    (tmp_path / NAME).write_text("{}")
    monkeypatch.setenv("RAILYARD_RAIL_SPECS", str(tmp_path))
    assert spec_file(NAME) == tmp_path / NAME


def test_a_download_is_kept_only_when_its_digest_matches(published: bytes, nowhere: Path) -> None:
    for base in serve(b'{"tampered": true}'):
        with pytest.raises(SpecNotFound, match="not the pinned"):
            spec_file(NAME, base_url=base)
    assert not (nowhere / "cache" / "railyard" / "rails" / NAME).exists()
    for base in serve(published):
        got = spec_file(NAME, base_url=base)
    assert got == nowhere / "cache" / "railyard" / "rails" / NAME
    assert got.read_bytes() == published
    assert spec_file(NAME, base_url="http://127.0.0.1:9") == got  # cached: no download


def test_nothing_found_and_no_download_says_what_to_do(nowhere: Path) -> None:
    with pytest.raises(SpecNotFound) as caught:
        spec_file(NAME, base_url="http://127.0.0.1:9")  # nothing listens on port 9
    message = str(caught.value)
    assert "RAILYARD_RAIL_SPECS" in message and "download from" in message
    assert str(nowhere / "shared" / "rails" / NAME) in message


def test_every_pinned_spec_names_its_official_source() -> None:
    for name, spec in PUBLISHED.items():
        assert spec.url().startswith("https://raw.githubusercontent.com/")
        assert spec.url().endswith(spec.path) and len(spec.commit) == 40, name
        assert len(spec.sha256) == 64
