"""`stylevault demo` runs offline end to end and leaves a consistent catalogue behind."""

from __future__ import annotations

from typer.testing import CliRunner

from governance import audit, images
from governance.catalogue import Catalogue
from governance.cli import app


def test_demo_runs_end_to_end(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "21 offered = 18 catalogued + 1 duplicates + 2 rejected" in result.stdout
    assert "refused" in result.stdout and "four-eyes" in result.stdout
    assert "audit chain: intact" in result.stdout
    assert "under commercial: 5 of 18 cleared" in result.stdout
    assert "under research: 8 of 18 cleared" in result.stdout
    assert "the index is now stale (revoked image 2" in result.stdout
    assert "sam rebuilds: 4 members" in result.stdout and "0 images embedded anew" in result.stdout
    assert "gia generates 2 images" in result.stdout and "2 outputs retrieved it" in result.stdout
    assert "audit chain: intact" in result.stdout
    assert (tmp_path / "licence-report.md").read_text().startswith("# Licence report")
    catalogue = Catalogue.open(f"sqlite:///{tmp_path / 'stylevault.db'}")
    with catalogue.read() as session:
        states = {row["state"] for row in images.list_images(session)}
        assert states == {"approved", "pending", "rejected", "revoked"}
        assert audit.verify(session).ok
    catalogue.dispose()
