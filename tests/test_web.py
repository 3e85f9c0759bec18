"""The web review desk through FastAPI's test client: sign-in, sessions, CSRF, roles, four-eyes, the
review queue at a realistic size, style sets, runs, audit and reports. A real catalogue throughout."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import Image, Licence
from stylevault.governance.ingest.run import ingest
from stylevault.governance.web import passwords
from tests.desk import (
    client_for,
    csrf_of,
    give_passwords,
    post,
    refusals,
    sign_in,
    states,
)
from tests.factories import encode, folder_of_images, picture, run_generate, write, write_csv
from tests.test_audit import attacker  # noqa: F401  (the fixture: triggers dropped, raw edits)

# ---------------------------------------------------------------- CSRF, roles, four-eyes


def test_a_missing_or_forged_csrf_token_is_refused_and_audited(lee, queue):
    assert lee.post("/images/1/approve", data={}).status_code == 403
    forged = lee.post("/images/1/approve", data={"csrf": "0" * 64})
    assert forged.status_code == 403 and "not sent from a current page" in forged.text
    assert states(queue)[1] == "pending"
    events = refusals(queue, "csrf")
    assert len(events) == 2 and {e["actor"] for e in events} == {"lee"}
    assert events[0]["target"] == "request:POST /images/1/approve"


def test_a_token_from_another_session_is_refused(queue):
    first, second = client_for(queue), client_for(queue)
    sign_in(first, "lee")
    sign_in(second, "kim")
    token = csrf_of(first.get("/images/1"))
    assert second.post("/images/1/approve", data={"csrf": token}).status_code == 403
    assert states(queue)[1] == "pending"


def test_a_viewer_cannot_change_anything(queue):
    val = client_for(queue)
    sign_in(val, "val")
    page = val.get("/stylesets")
    assert page.status_code == 200 and "create-styleset" not in page.text
    image = val.get("/images/1")
    assert 'id="read-only"' in image.text and "approve-form" not in image.text
    refused = post(val, "/images/1", "/images/1/approve")
    assert refused.status_code == 403 and "may not review: it needs the legal role" in refused.text
    assert post(val, "/stylesets", "/stylesets", name="sneaky").status_code == 403
    assert states(queue)[1] == "pending"
    assert [e["after"]["kind"] for e in refusals(queue)] == ["rule", "rule"]
    assert all(e["actor"] == "val" for e in refusals(queue))


def test_the_ingester_cannot_approve_and_the_refusal_is_audited(queue, tmp_path):
    write(tmp_path / "kim" / "k.png", encode(picture(999)))
    ingest(queue, "kim", tmp_path / "kim", licence="CC0", progress=False)
    kim = client_for(queue)
    sign_in(kim, "kim")
    refused = post(kim, "/images/7", "/images/7/approve")
    assert refused.status_code == 403 and "kim ingested it and cannot approve it (four-eyes)" in refused.text
    assert states(queue)[7] == "pending"
    [event] = refusals(queue, "rule")
    assert event["actor"] == "kim" and "four-eyes" in event["after"]["reason"]


# ---------------------------------------------------------------- the review queue


def test_the_queue_shows_each_image_with_its_licence_source_and_decided_near_duplicates(lee, queue, tmp_path):
    # The same picture re-encoded as JPEG: new bytes, same perceptual hash, rejected already.
    write(tmp_path / "dup" / "d.jpg", encode(picture(300), "JPEG", quality=95))
    ingest(queue, "sam", tmp_path / "dup", licence="CC0", progress=False)
    assert post(lee, "/images/7", "/images/7/reject", reason="watermarked").status_code == 303
    page = lee.get("/queue")
    assert page.status_code == 200 and "6 images" in page.text
    assert "free for personal use" in page.text and "north" in page.text
    assert '<a href="/images/7" class="state-rejected">#7 rejected</a>' in page.text
    detail = lee.get("/images/1")
    assert '#7</a> <span class="state-rejected">rejected</span>' in detail.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("collection=south", [5, 6]),
        ("flagged=1", [5]),
        ("licence=CC-BY-4.0", [6]),
        ("expiring=3650", [6]),
        ("state=approved", []),
    ],
)
def test_queue_filters(lee, query, expected):
    page = lee.get(f"/queue?{query}")
    assert page.status_code == 200
    assert [int(i) for i in re.findall(r'class="image-link">#(\d+)<', page.text)] == expected


def test_a_long_queue_is_counted_up_to_a_cap(lee, monkeypatch):
    from stylevault.governance.web import queries

    monkeypatch.setattr(queries, "COUNT_CAP", 4)
    for page in ("/queue", "/queue?state=pending&after=3"):
        assert '<small id="queue-count">4+ images</small>' in lee.get(page).text
    assert '<small id="queue-count">2 images</small>' in lee.get("/queue?collection=south").text


def test_bad_filters_say_which_field(lee):
    page = lee.get("/queue?expiring=soon")
    assert page.status_code == 400 and "expiring (days): a whole number" in page.text
    assert "unknown state &#39;maybe&#39;" in lee.get("/queue?state=maybe").text


def test_approving_opens_the_next_image_of_the_same_queue(lee, queue):
    response = post(lee, "/images/2?collection=north", "/images/2/approve", q="collection=north")
    assert (
        response.status_code == 303
        and response.headers["location"] == "/images/3?state=pending&collection=north"
    )
    assert "Image 2 approved." in lee.get(response.headers["location"]).text
    rejected = post(lee, "/images/3", "/images/3/reject", reason="off-style", q="state=pending")
    assert rejected.headers["location"] == "/images/4?state=pending"
    assert states(queue) == {
        1: "pending",
        2: "approved",
        3: "rejected",
        4: "pending",
        5: "pending",
        6: "pending",
    }


def test_rejecting_needs_a_reason_and_an_unsettled_licence_cannot_be_approved(lee, queue):
    no_reason = post(lee, "/images/1", "/images/1/reject")
    assert no_reason.status_code == 400 or no_reason.status_code == 403
    assert "reason is required to reject" in no_reason.text
    unsettled = post(lee, "/images/5", "/images/5/approve")
    assert unsettled.status_code == 403 and "licence is unrecognised" in unsettled.text
    assert states(queue)[1] == states(queue)[5] == "pending"


def test_setting_the_licence_takes_a_url_as_evidence_never_a_path(lee, queue):
    path = post(
        lee, "/images/5", "/images/5/licence", licence="LicenseRef-Contract-7", evidence="/etc/passwd"
    )
    assert path.status_code == 400 and "evidence: give an http(s) URL" in path.text
    bad = post(lee, "/images/5", "/images/5/licence", licence="not a licence ((")
    assert bad.status_code == 400
    done = post(
        lee,
        "/images/5",
        "/images/5/licence",
        licence="LicenseRef-Contract-7",
        evidence="https://legal.example/contracts/7",
        expires="2027-06-30",
    )
    assert done.status_code == 303 and done.headers["location"] == "/images/5?state=pending"
    with queue.read() as session:
        lic = session.get(Licence, 5)
        assert (lic.spdx, lic.status, lic.evidence) == (
            "LicenseRef-Contract-7",
            "verified",
            "https://legal.example/contracts/7",
        )
        [event] = audit.log(session, action="licence.set")
    assert event["actor"] == "lee"
    page = lee.get("/images/5")
    assert '<a href="https://legal.example/contracts/7" rel="noopener noreferrer"' in page.text
    assert post(lee, "/images/5", "/images/5/approve").status_code == 303


def test_bulk_decisions_from_the_queue_are_all_or_nothing(lee, queue):
    refused = post(lee, "/queue", "/queue/decide", decision="approve", image=["1", "5"])
    assert refused.status_code == 403 and states(queue)[1] == "pending"
    done = post(lee, "/queue", "/queue/decide", decision="approve", image=["1", "2"], q="state=pending")
    assert done.status_code == 303
    assert [states(queue)[i] for i in (1, 2)] == ["approved", "approved"]


def test_a_legal_reviewer_clears_a_queue_of_a_hundred_images(catalogue, team, tmp_path):
    folder_of_images(tmp_path / "in", 100, start_seed=1000)
    ingest(catalogue, "sam", tmp_path / "in", licence="CC0", progress=False)
    give_passwords(catalogue, ["lee"])
    client = client_for(catalogue)
    sign_in(client, "lee")
    first = client.get("/queue")
    assert "100 images" in first.text and 'id="next-page"' in first.text
    assert len(re.findall(r'class="image-link"', first.text)) == 50
    second = client.get("/queue?state=pending&after=50")
    assert len(re.findall(r'class="image-link"', second.text)) == 50 and 'id="next-page"' not in second.text
    assert '<small id="queue-count">100 images</small>' in second.text  # the whole queue, on every page
    location, approvals = "/images/1?state=pending", 0
    while location.startswith("/images/"):
        page = client.get(location)
        image_id = int(re.search(r"/images/(\d+)", location).group(1))
        response = client.post(
            f"/images/{image_id}/approve", data={"csrf": csrf_of(page), "q": "state=pending"}
        )
        assert response.status_code == 303
        location, approvals = response.headers["location"], approvals + 1
    assert approvals == 100 and location == "/queue?state=pending"
    assert "Nothing more in this queue." in client.get(location).text
    assert set(states(catalogue).values()) == {"approved"}
    with catalogue.read() as session:
        events = audit.log(session, action="review.approve")
        assert len(events) == 100 and {e["actor"] for e in events} == {"lee"}
        assert audit.verify(session).ok


# ---------------------------------------------------------------- ids, assets, paths


@pytest.mark.parametrize(
    "path",
    [
        "/images/999",
        "/images/abc",
        "/stylesets/nope",
        "/runs/zzz",
        "/thumbs/" + "0" * 64 + ".jpg",
        "/thumbs/..%2F..%2Fcatalogue.db",
        "/evidence/..%2Fweb-secret.key",
        "/outputs/" + "a" * 64 + ".png",
    ],
)
def test_unknown_ids_and_paths_are_404(lee, path):
    assert lee.get(path).status_code == 404


def test_thumbnails_are_served_by_hash(lee, queue):
    with queue.read() as session:
        sha = session.get(Image, 1).sha256
    response = lee.get(f"/thumbs/{sha}.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"


# ---------------------------------------------------------------- style sets


def test_a_steward_curates_publishes_diffs_and_checks_a_style_set(published):
    give_passwords(published, ["sam"])
    sam = client_for(published)
    sign_in(sam, "sam")
    page = sam.get("/stylesets/looks")
    assert page.status_code == 200 and "looks@1" in page.text
    assert len(re.findall(r'name="image" value="\d+"', page.text)) == 8
    removed = post(sam, "/stylesets/looks", "/stylesets/looks/remove", image=["2", "3"])
    assert removed.status_code == 303
    assert "2 removed; 6 members." in sam.get("/stylesets/looks").text
    published_v2 = post(sam, "/stylesets/looks", "/stylesets/looks/publish", note="fewer")
    assert published_v2.status_code == 303
    assert "Published looks@2 with 6 members." in sam.get("/stylesets/looks").text
    again = post(sam, "/stylesets/looks", "/stylesets/looks/publish")
    assert again.status_code == 403 and "has not changed since looks@2" in again.text
    diff = sam.get("/stylesets/looks/diff?from=1&to=2")
    assert "Removed (2)" in diff.text and "Added (0)" in diff.text
    check = sam.get("/stylesets/looks/check?policy=commercial&version=1")
    assert check.status_code == 200
    assert "7 cleared" in check.text
    assert "<strong>licence-excluded</strong>" in check.text and "/images/4?" in check.text
    assert post(sam, "/stylesets/looks", "/stylesets/looks/add", images="2 3").status_code == 303
    assert post(sam, "/stylesets", "/stylesets", name="bad name!").status_code == 400
    assert sam.get("/stylesets/looks/check?policy=nope").status_code == 400


# ---------------------------------------------------------------- runs, indexes, audit, reports


def test_a_run_shows_its_output_neighbours_and_attribution(indexed, rdm_dir, tmp_path):
    catalogue, folder = indexed
    made = run_generate(catalogue, folder, rdm_dir, tmp_path / "out", prompt="a red study")
    give_passwords(catalogue, ["val"])
    val = client_for(catalogue)
    sign_in(val, "val")
    assert "current" in val.get("/indexes").text and "commercial" in val.get("/indexes").text
    runs = val.get("/runs")
    assert f"/runs/{made.run_id}" in runs.text
    page = val.get(f"/runs/{made.run_id}")
    assert page.status_code == 200 and "a red study" in page.text
    notice = (tmp_path / "out" / "ATTRIBUTION.md").read_text()
    assert notice.strip().splitlines()[2] in page.text.replace("&#34;", '"').replace("&#39;", "'")
    assert len(re.findall(r'<img class="mini" src="/thumbs/[0-9a-f]{64}\.jpg"', page.text)) == 3
    sha = re.search(r'src="/outputs/([0-9a-f]{64})\.png"', page.text).group(1)
    image = val.get(f"/outputs/{sha}.png")
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_audit_log_filters_and_verifies(lee, queue, attacker):  # noqa: F811
    post(lee, "/images/1", "/images/1/approve")
    page = lee.get("/audit?actor=lee&action=review")
    assert (
        page.status_code == 200
        and "review.approve" in page.text
        and "ingest" not in page.text.split("events")[-1]
    )
    verified = lee.get("/audit?verify=1")
    assert "Audit chain intact" in verified.text
    attacker(sa.text("UPDATE audit_event SET actor = 'mallory' WHERE id = 2"))
    assert "Audit chain broken at event 2" in lee.get("/audit?verify=1").text


def test_the_audit_page_runs_the_replay_as_audit_verify_does(lee, attacker):  # noqa: F811
    """A row changed without an event leaves the chain intact; the replay finds it, and the page
    says how many places disagree and lists the first few. (This fixture's password rows were
    written without their events, so the replay finds those too.)"""
    attacker(sa.text("UPDATE licence SET spdx = 'LicenseRef-Edited' WHERE image_id = 1"))
    page = lee.get("/audit?verify=1").text
    assert "Audit chain intact" in page
    assert "Replay: the tables disagree with the log in" in page and "LicenseRef-Edited" in page


def test_the_licence_report_and_its_downloads(lee):
    page = lee.get("/reports/licences")
    assert page.status_code == 200 and "CC0-1.0" in page.text and "free for personal use" in page.text
    download = lee.get("/reports/licences?format=csv")
    assert download.headers["content-type"].startswith("text/csv") and download.text.startswith(
        "section,licence"
    )
    assert lee.get("/reports/licences?format=pdf").status_code == 400


def test_the_desks_csv_neutralises_a_formula(lee, queue, tmp_path):
    formula = "=cmd|' /C calc'!A0"
    write(tmp_path / "more" / "f.png", encode(picture(399)))
    manifest = write_csv(tmp_path / "f.csv", [{"path": "f.png", "licence": formula}])
    ingest(queue, "sam", tmp_path / "more", manifest=manifest, progress=False)
    download = lee.get("/reports/licences?format=csv")
    flagged = [r["licence"] for r in csv.DictReader(io.StringIO(download.text)) if r["section"] == "flagged"]
    assert "'" + formula in flagged and formula not in flagged


# ---------------------------------------------------------------- CLI: passwords, serve, the secret


def test_an_admin_sets_a_password_from_the_cli_and_the_log_never_holds_it(cli, team, catalogue, monkeypatch):
    monkeypatch.setenv("STYLEVAULT_PASSWORD", "s3cret-enough")
    assert cli("users", "passwd", "lee", actor="admin").exit_code == 0
    refused = cli("users", "passwd", "lee", actor="sam")
    assert refused.exit_code == 1 and "may not actors.manage" in refused.stderr
    monkeypatch.setenv("STYLEVAULT_PASSWORD", "short")
    short = cli("users", "passwd", "lee", actor="admin")
    assert short.exit_code == 2 and "password: at least 8 characters" in short.stderr
    with catalogue.read() as session:
        assert passwords.authenticate(session, "lee", "s3cret-enough").name == "lee"
        assert passwords.authenticate(session, "lee", "wrong-password") is None
        [event] = audit.log(session, action="actor.password_set")
    assert event["after"] == {"password_set": True, "session_generation": 1} and "s3cret" not in str(event)


def test_serve_binds_to_loopback_by_default():
    import inspect

    from stylevault.governance.cli.web_commands import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


def test_the_session_secret_is_made_once_beside_the_catalogue(tmp_path, monkeypatch):
    from stylevault.governance.web.config import SECRET_FILE, secret_key

    monkeypatch.delenv("STYLEVAULT_SECRET_KEY", raising=False)
    first = secret_key(tmp_path / "store")
    assert secret_key(tmp_path / "store") == first and len(first) == 64
    assert (tmp_path / "store" / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("STYLEVAULT_SECRET_KEY", "short")
    with pytest.raises(Exception, match="at least 32 characters"):
        secret_key(tmp_path / "store")


def test_outputs_are_signed_off_through_the_rules_of_output_review(indexed, rdm_dir, tmp_path):
    catalogue, folder = indexed
    made = run_generate(catalogue, folder, rdm_dir, tmp_path / "out", n=2)
    give_passwords(catalogue, ["lee", "val"])
    lee, val = client_for(catalogue), client_for(catalogue)
    sign_in(lee, "lee")
    sign_in(val, "val")
    listed = lee.get("/outputs")
    assert (
        listed.status_code == 200
        and len(re.findall(r'<a href="/runs/[0-9a-f]+#output-\d">#\d+</a>', listed.text)) == 2
    )
    run_page = f"/runs/{made.run_id}"
    assert "release-form" not in val.get(run_page).text
    refused = post(val, run_page, "/outputs/1/release")
    assert refused.status_code == 403 and "may not output.release" in refused.text
    no_reason = post(lee, run_page, "/outputs/1/withhold")
    assert no_reason.status_code == 400 and "say why the output is withheld" in no_reason.text
    withheld = post(lee, run_page, "/outputs/1/withhold", reason="too close to its sources")
    assert withheld.status_code == 303 and withheld.headers["location"] == f"{run_page}#output-0"
    again = post(lee, run_page, "/outputs/1/release", override="checked by hand")
    assert again.status_code == 403
    released = post(lee, run_page, "/outputs/2/release", override="checked by hand")
    assert released.status_code == 303
    page = lee.get(run_page).text
    assert re.findall(r'class="output-state">(\w+)<', page) == ["withheld", "released"]
    assert lee.get("/outputs?state=released").text.count("#output-1") == 1
    with catalogue.read() as session:
        actions = [e["action"] for e in audit.log(session, target_type="output")]
    assert actions == ["output.release", "output.withhold"]
    assert lee.post("/outputs/99/release", data={"csrf": csrf_of(lee.get(run_page))}).status_code == 404


def test_evidence_files_are_served_from_the_store_by_hash(lee, queue, tmp_path):
    from stylevault.governance.legal import licence_decisions
    from stylevault.governance.views.images import resolve

    (tmp_path / "contract.pdf").write_bytes(b"%PDF-1.4 a contract\n")
    (tmp_path / "page.html").write_bytes(b"<script>alert(1)</script>")
    with queue.write() as session:
        for image_id, evidence in ((5, "contract.pdf"), (6, "page.html")):
            licence_decisions.set_licence(
                session,
                queue.store,
                "lee",
                resolve(session, str(image_id)),
                licence="LicenseRef-Contract-9",
                evidence=str(tmp_path / evidence),
            )
    pdf_link = re.search(
        r'<a href="(/evidence/[0-9a-f]{64}\.pdf)">contract\.pdf</a>', lee.get("/images/5").text
    )
    pdf = lee.get(pdf_link.group(1))
    assert (
        pdf.status_code == 200
        and pdf.content.startswith(b"%PDF")
        and pdf.headers["content-disposition"] == "inline"
    )
    html_link = re.search(
        r'<a href="(/evidence/[0-9a-f]{64}\.html)">page\.html</a>', lee.get("/images/6").text
    )
    html = lee.get(html_link.group(1))
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")


def test_an_admin_manages_actors_and_their_passwords_in_the_browser(queue):
    admin = client_for(queue)
    sign_in(admin, "admin")
    added = post(admin, "/actors", "/actors", name="ria", role=["reviewer", "legal"])
    assert added.status_code == 303
    assert "Added ria (legal, reviewer)." in admin.get("/actors").text
    differ = post(admin, "/actors", "/actors/ria/password", password="a long password", again="another one")
    assert differ.status_code == 400 and "the two entries differ" in differ.text
    assert (
        post(
            admin, "/actors", "/actors/ria/password", password="ria's password!", again="ria's password!"
        ).status_code
        == 303
    )
    ria = client_for(queue)
    assert sign_in(ria, "ria", "ria's password!").status_code == 303
    assert post(admin, "/actors", "/actors/ria/disable").status_code == 303
    assert ria.get("/queue").status_code == 303  # a disabled actor's session ends at its next request
    lee = client_for(queue)
    sign_in(lee, "lee")
    assert "password-form" not in lee.get("/actors").text
    refused = post(lee, "/actors", "/actors", name="eve", role=["admin"])
    assert refused.status_code == 403 and "may not actors.manage" in refused.text
    with queue.read() as session:
        events = audit.log(session, target_type="actor", target_id="ria")
    assert [e["action"] for e in events][:3] == ["actor.disable", "web.signin", "actor.password_set"]
    assert all("password!" not in str(e) for e in events)


# ---------------------------------------------------------------- one decision for a whole queue


def test_an_unsettled_licence_refusal_points_to_the_form_on_the_page(lee, queue):
    refused = post(lee, "/images/5", "/images/5/approve")
    assert refused.status_code == 403
    assert "settle it first with the Set the licence form on its page" in refused.text
    assert "stylevault licence set" not in refused.text
    assert '<a href="/images/5#licence-form" id="remedy">' in refused.text
    assert 'id="licence-form"' in lee.get("/images/5").text


def test_legal_records_one_licence_for_a_whole_queue_after_seeing_the_count(lee, queue):
    queue_page = lee.get("/queue?raw=free+for+personal+use")
    assert 'id="bulk-queue"' in queue_page.text and "1 images" in queue_page.text
    fields = dict(
        q="state=pending&raw=free+for+personal+use", decision="licence", licence="LicenseRef-Personal"
    )
    preview = post(lee, "/queue", "/queue/bulk", **fields)
    assert preview.status_code == 200
    summary = re.sub(r"\s+", " ", re.search(r'<p id="bulk-summary">(.*?)</p>', preview.text, re.S).group(1))
    assert summary == (
        "<strong>1</strong> image state <code>free for personal use</code>: "
        "record <strong>LicenseRef-Personal</strong> (verified) for all."
    )
    with queue.read() as session:
        assert session.get(Licence, 5).status == "unrecognised"  # the preview changed nothing
    forged = lee.post("/queue/bulk", data={**fields, "expected": "1"})
    assert forged.status_code == 403 and refusals(queue, "csrf")
    stale = post(lee, "/queue", "/queue/bulk", **fields, expected="2")
    assert stale.status_code == 403 and "not the 2 you confirmed" in stale.text
    done = post(lee, "/queue", "/queue/bulk", **fields, expected="1")
    assert done.status_code == 303
    assert "1 image recorded as LicenseRef-Personal." in lee.get(done.headers["location"]).text
    with queue.read() as session:
        assert (session.get(Licence, 5).status, session.get(Licence, 5).spdx) == (
            "verified",
            "LicenseRef-Personal",
        )
        assert [e["target"] for e in audit.log(session, action="licence.set")] == ["image:5"]


def test_approving_a_whole_queue_skips_what_the_approver_ingested(queue, tmp_path):
    write(tmp_path / "kim" / "k.png", encode(picture(998)))
    ingest(queue, "kim", tmp_path / "kim", source="north", licence="CC0", progress=False)
    kim = client_for(queue)
    sign_in(kim, "kim")
    fields = dict(q="state=pending&collection=north", decision="approve")
    preview = post(kim, "/queue", "/queue/bulk", **fields)
    assert "<strong>4</strong> images" in preview.text and "1 more match but are skipped" in preview.text
    assert "kim ingested it and cannot approve it (four-eyes)" in preview.text
    flagged = post(kim, "/queue", "/queue/bulk", q="state=pending&collection=south", decision="approve")
    assert '<a href="/images/5#licence-form">set it on its page</a>' in flagged.text
    assert "stylevault licence set" not in flagged.text
    assert states(queue)[1] == "pending"
    done = post(kim, "/queue", "/queue/bulk", **fields, expected="4")
    assert done.status_code == 303
    assert [states(queue)[i] for i in (1, 2, 3, 4, 7)] == ["approved"] * 4 + ["pending"]
