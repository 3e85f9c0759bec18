from governance import audit
from governance.ingest import ingest
from tests.factories import folder_of_images


def test_ingest_then_verify(catalogue, team, tmp_path):
    folder_of_images(tmp_path / "in", 3)
    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)
    assert (summary.offered, summary.catalogued, summary.duplicates, summary.rejected) == (3, 3, 0, 0)
    with catalogue.read() as session:
        assert audit.verify(session).ok
