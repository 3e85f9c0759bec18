"""The web review desk through FastAPI's test client: sign-in, sessions, CSRF, roles, four-eyes, the
review queue at a realistic size, style sets, runs, audit and reports. A real catalogue throughout."""

from __future__ import annotations

import csv
import functools
import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import ActorPassword, Image, Licence
from stylevault.governance.errors import BadInput
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from stylevault.governance.web import passwords
from stylevault.governance.web.app import create_app
from stylevault.governance.web.config import WebConfig
from stylevault.governance.web.sessions import COOKIE, Session
from tests.conftest import ON_POSTGRES
from tests.factories import encode, folder_of_images, lose_a_race, picture, run_generate, write, write_csv
from tests.test_audit import attacker  # noqa: F401  (the fixture: triggers dropped, raw edits)

SECRET = b"test secret key for the web desk, 32+ bytes"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@functools.cache
def password_hash() -> str:
    return passwords._hasher().hash(PASSWORD)


def give_passwords(catalogue, names):
    """The rows `passwords.set_password` writes, with one hash made once: argon2 is slow by design
    (tested through set_password and the CLI below)."""
    with catalogue.write() as session:
        admin = actors.find(session, "admin")
        for name in names:
            actor = actors.find(session, name)
            session.add(ActorPassword(actor_id=actor.id, hash=password_hash(), set_by=admin.id))


def client_for(catalogue, **config) -> TestClient:
    app = create_app(catalogue, WebConfig(secret_key=SECRET, **config))
    return TestClient(app, follow_redirects=False)


def csrf_of(response) -> str:
    found = CSRF.search(response.text)
    assert found, f"no CSRF token on {response.url}"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD):
    token = csrf_of(client.get("/signin"))
    return client.post("/signin", data={"csrf": token, "name": name, "password": password, "next": "/queue"})


def post(client: TestClient, page: str, action: str, **fields):
    """Submit a form the way a browser does: with the CSRF token of the page it sits on."""
    return client.post(action, data={"csrf": csrf_of(client.get(page)), **fields})


def refusals(catalogue, kind: str | None = None) -> list[dict]:
    with catalogue.read() as session:
        events = audit.log(session, action="web.refused")
    return [e for e in events if kind is None or e["after"]["kind"] == kind]


def states(catalogue) -> dict[int, str]:
    with catalogue.read() as session:
        return dict(session.execute(sa.select(Image.id, Image.state).order_by(Image.id)).all())


@pytest.fixture
def queue(catalogue, team, tmp_path):
    """Six images sam ingested: 1-4 CC0 in collection `north`, 5 with an unrecognised licence, 6 CC-BY
    expiring on 2026-12-01; everyone has a password."""
    rows = []
    for n in range(6):
        write(tmp_path / "in" / f"{n}.png", encode(picture(300 + n)))
        licence = {4: "free for personal use", 5: "CC BY 4.0"}.get(n, "CC0")
        rows.append({"path": f"{n}.png", "licence": licence, "collection": "north" if n < 4 else "south"})
    rows[5]["licence_expires"] = "2026-12-01"
    ingest(catalogue, "sam", tmp_path / "in", manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    give_passwords(catalogue, ["admin", "sam", "kim", "lee", "val"])
    return catalogue


@pytest.fixture
def lee(queue):
    client = client_for(queue)
    assert sign_in(client, "lee").status_code == 303
    return client


# ---------------------------------------------------------------- sign-in and sessions


def test_pages_and_thumbnails_need_a_signed_in_actor(queue):
    client = client_for(queue)
    response = client.get("/queue?state=pending")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/queue%3Fstate%3Dpending"
    with queue.read() as session:
        sha = session.get(Image, 1).sha256
    assert client.get(f"/thumbs/{sha}.jpg").status_code == 401


def test_signing_in_sets_a_strict_http_only_session_and_is_audited(queue):
    client = client_for(queue)
    response = sign_in(client, "lee")
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    page = client.get("/queue")
    assert page.status_code == 200 and 'id="signed-in-as">lee<' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    with queue.read() as session:
        assert [e["actor"] for e in audit.log(session, action="web.signin")] == ["lee"]


def test_secure_cookies_when_configured(queue):
    client = client_for(queue, secure_cookies=True)
    assert "Secure" in client.get("/signin").headers["set-cookie"]


def test_a_wrong_password_or_unknown_actor_is_refused_and_audited(queue):
    client = client_for(queue)
    wrong = sign_in(client, "lee", "not the password")
    assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    assert sign_in(client, "nobody").status_code == 401
    assert client.get("/queue").status_code == 303
    reasons = [e["after"]["reason"] for e in refusals(queue, "signin")]
    assert reasons == ["wrong name or password for 'nobody'", "wrong name or password for 'lee'"]
    assert all(PASSWORD not in str(e) and "not the password" not in str(e) for e in refusals(queue))


def test_an_actor_without_a_password_or_disabled_cannot_sign_in(queue):
    with queue.write() as session:
        actors.set_disabled(session, "admin", "val", True)
    client = client_for(queue)
    assert sign_in(client, "gia").status_code == 401  # gia has no password
    assert sign_in(client, "val").status_code == 401  # val is disabled


def test_an_expired_session_is_refused_and_audited(queue):
    client = client_for(queue, session_seconds=3600)
    sessions = client.app.state.sessions
    stale = Session(sid="s" * 32, actor="lee", signed_in_at=time.time() - 3601)
    client.cookies.set(COOKIE, sessions.dump(stale))
    response = client.get("/queue")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    assert "Your session expired" in client.get("/signin").text
    [event] = refusals(queue, "session")
    assert event["actor"] == "lee" and event["after"]["reason"] == "the session expired"


def test_a_form_sent_after_the_session_expired_changes_nothing(queue):
    client = client_for(queue, session_seconds=3600)
    sign_in(client, "lee")
    token = csrf_of(client.get("/images/1"))
    stale = Session(sid="s" * 32, actor="lee", signed_in_at=time.time() - 3601)
    client.cookies.clear()
    client.cookies.set(COOKIE, client.app.state.sessions.dump(stale))
    response = client.post("/images/1/approve", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == "/signin?next=/queue"
    assert states(queue)[1] == "pending"
    [event] = refusals(queue, "session")
    assert event["target"] == "request:POST /images/1/approve" and event["actor"] == "lee"


@pytest.mark.skipif(not ON_POSTGRES, reason="a serialisation failure is PostgreSQL's")
def test_a_decision_that_lost_a_race_is_retried_and_one_that_keeps_losing_gets_a_page(
    queue, lee, monkeypatch
):
    """PostgreSQL aborts the desk's transaction (40001): it runs again and lands; when it keeps losing
    the desk answers a page that says so, never a bare 500, and the refusal is on the audit chain."""
    decide, lost = review.decide, []

    def losing(session, *args, always=False):
        if always or not lost:
            lost.append(1)
            lose_a_race(session, queue, int(args[2][0]))  # (actor, decision, [image], reason)
        return decide(session, *args)

    monkeypatch.setattr(review, "decide", losing)
    response = post(lee, "/images/1", "/images/1/approve")
    assert response.status_code == 303 and len(lost) == 1
    assert states(queue)[1] == "approved"

    monkeypatch.setattr(review, "decide", lambda session, *args: losing(session, *args, always=True))
    response = post(lee, "/images/2", "/images/2/approve")
    assert response.status_code == 503
    assert "The catalogue was busy with other changes and nothing was changed" in response.text
    assert states(queue)[2] == "pending"
    [event] = refusals(queue, "busy")
    assert event["actor"] == "lee" and event["target"] == "request:POST /images/2/approve"
    assert "serialisation failure" in event["after"]["reason"]


def test_a_forged_cookie_is_no_session(queue):
    client = client_for(queue)
    other = client_for(queue).app.state.sessions
    forged = Session(sid="s" * 32, actor="lee", signed_in_at=time.time())
    client.cookies.set(COOKIE, other.dump(forged)[:-2] + "xx")
    assert client.get("/queue").status_code == 303


PROXY = ("10.0.0.5", 41000)


def from_address(app, address: tuple[str, int]) -> TestClient:
    """A browser connecting to the server `app` from `address`."""
    return TestClient(app, follow_redirects=False, client=address)


def test_the_trusted_header_is_honoured_only_when_configured(queue):
    plain = client_for(queue)
    assert plain.get("/queue", headers={"X-Forwarded-User": "lee"}).status_code == 303
    proxied = from_address(
        client_for(queue, trusted_header="X-Forwarded-User", trusted_proxies=("10.0.0.0/24",)).app, PROXY
    )
    page = proxied.get("/queue", headers={"X-Forwarded-User": "lee"})
    assert page.status_code == 200 and 'id="signed-in-as">lee<' in page.text
    unknown = proxied.get("/queue", headers={"X-Forwarded-User": "mallory"})
    assert unknown.status_code == 403 and "names &#39;mallory&#39;, not an enabled actor" in unknown.text
    [event] = refusals(queue, "rule")
    assert event["actor"] is None and "mallory" in event["after"]["reason"]


def test_the_trusted_header_is_refused_from_anyone_but_the_proxy(queue):
    app = client_for(queue, trusted_header="X-Forwarded-User", trusted_proxies=("10.0.0.5",)).app
    for address in (("127.0.0.1", 50000), ("10.0.0.6", 50000), ("testclient", 50000)):
        local = from_address(app, address)
        refused = local.get("/queue", headers={"X-Forwarded-User": "lee"})
        assert refused.status_code == 403 and "not from the trusted proxy" in refused.text
        assert local.get("/signin", headers={"X-Forwarded-User": "lee"}).status_code == 403
        assert local.get("/queue").status_code == 303  # without the header: sign in as anyone does
    assert from_address(app, PROXY).get("/queue", headers={"X-Forwarded-User": "lee"}).status_code == 200
    reasons = [e["after"]["reason"] for e in refusals(queue, "rule")]
    assert reasons[-1] == "the X-Forwarded-User header came from 127.0.0.1, not from the trusted proxy"


def test_a_trusted_header_needs_the_proxys_address(cli, team):
    with pytest.raises(BadInput, match="give --trusted-proxy ADDR"):
        WebConfig(secret_key=SECRET, trusted_header="X-Forwarded-User")
    with pytest.raises(BadInput, match="--trusted-proxy: 'proxy.example' is not an IP address"):
        WebConfig(secret_key=SECRET, trusted_header="X-Forwarded-User", trusted_proxies=("proxy.example",))
    refused = cli("serve", "--trusted-header", "X-Forwarded-User")
    assert refused.exit_code == 2 and "give --trusted-proxy ADDR" in refused.stderr


def test_signing_out_ends_the_session(lee):
    assert post(lee, "/queue", "/signout").status_code == 303
    assert lee.get("/queue").status_code == 303


def replay(catalogue, cookie: str) -> TestClient:
    """A browser holding a copy of `cookie` (kept from before, or stolen)."""
    client = client_for(catalogue)
    client.cookies.set(COOKIE, cookie)
    return client


def test_a_cookie_kept_from_before_signing_out_is_refused(queue):
    lee, other_browser = client_for(queue), client_for(queue)
    sign_in(lee, "lee")
    sign_in(other_browser, "lee")
    kept = lee.cookies[COOKIE]
    assert replay(queue, kept).get("/queue").status_code == 200
    assert post(lee, "/queue", "/signout").status_code == 303
    stale = replay(queue, kept)
    refused = stale.get("/queue")
    assert refused.status_code == 303 and refused.headers["location"] == "/signin?next=/queue"
    assert "Your session was ended: sign in again." in stale.get("/signin").text
    assert other_browser.get("/queue").status_code == 303  # signing out ends it everywhere
    forged_form = replay(queue, kept).post("/images/1/approve", data={"csrf": csrf_of(lee.get("/signin"))})
    assert forged_form.status_code == 303 and states(queue)[1] == "pending"
    reasons = {e["after"]["reason"] for e in refusals(queue, "session")}
    assert reasons == {"the session was ended: its actor signed out, got a new password or was disabled"}
    with queue.read() as session:
        [event] = audit.log(session, action="web.signout")
    assert event["actor"] == "lee" and event["after"] == {"session_generation": 1}
    assert sign_in(lee, "lee").status_code == 303 and lee.get("/queue").status_code == 200


def test_a_new_password_ends_the_actors_sessions(queue):
    lee, admin = client_for(queue), client_for(queue)
    sign_in(lee, "lee")
    sign_in(admin, "admin")
    kept = lee.cookies[COOKIE]
    changed = post(
        admin, "/actors", "/actors/lee/password", password="a new password", again="a new password"
    )
    assert changed.status_code == 303
    assert lee.get("/queue").status_code == 303
    assert replay(queue, kept).get("/queue").status_code == 303
    assert admin.get("/queue").status_code == 200  # only lee's sessions end
    assert sign_in(lee, "lee").status_code == 401  # the old password is gone too
    assert sign_in(lee, "lee", "a new password").status_code == 303 and lee.get("/queue").status_code == 200


def test_a_disabled_actors_session_stays_ended_when_enabled_again(queue):
    lee, admin = client_for(queue), client_for(queue)
    sign_in(lee, "lee")
    sign_in(admin, "admin")
    kept = lee.cookies[COOKIE]
    assert post(admin, "/actors", "/actors/lee/disable").status_code == 303
    assert post(admin, "/actors", "/actors/lee/enable").status_code == 303
    assert replay(queue, kept).get("/queue").status_code == 303


def test_a_cookie_without_a_session_generation_is_refused(queue):
    """Cookies signed before sessions carried a generation name an actor but no generation."""
    client = client_for(queue)
    old = Session(sid="s" * 32, actor="lee", signed_in_at=time.time())
    client.cookies.set(COOKIE, client.app.state.sessions.dump(old))
    assert client.get("/queue").status_code == 303


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


def test_failed_sign_ins_are_limited_per_name(queue):
    client = client_for(queue, signin_attempts=2)
    assert sign_in(client, "lee", "guess one").status_code == 401
    assert sign_in(client, "lee", "guess two").status_code == 401
    blocked = sign_in(client, "lee")  # the right password, too late
    assert blocked.status_code == 429 and "try again in 15 minutes" in blocked.text
    assert sign_in(client, "kim").status_code == 303  # another name is not held up
    reasons = [e["after"]["reason"] for e in refusals(queue, "signin")]
    assert reasons[0] == "too many sign-ins for 'lee' or from testclient; refused for 15 more minutes"


def test_forty_wrong_passwords_at_once_get_five_checks(queue):
    """Real threads against the app: the limit holds while every request is still being checked."""
    app = client_for(queue).app  # one server, forty browsers
    clients = [TestClient(app, follow_redirects=False) for _ in range(40)]
    tokens = [csrf_of(client.get("/signin")) for client in clients]
    start = threading.Barrier(len(clients))

    def guess(n: int) -> int:
        form = {"csrf": tokens[n], "name": "lee", "password": f"guess {n}", "next": "/queue"}
        start.wait()
        return clients[n].post("/signin", data=form).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        answers = sorted(pool.map(guess, range(len(clients))))
    assert answers == [401] * 5 + [429] * 35
    checked = [e for e in refusals(queue, "signin") if e["after"]["reason"].startswith("wrong name")]
    assert len(checked) == 5


def test_one_client_trying_many_names_is_refused_and_others_are_not(queue):
    mallory = client_for(queue, signin_client_attempts=3)
    for n in range(3):
        assert sign_in(mallory, f"made-up-{n}").status_code == 401
    assert sign_in(mallory, "lee").status_code == 429  # no more names from this address
    lee = from_address(mallory.app, ("192.0.2.7", 50000))
    assert sign_in(lee, "lee").status_code == 303  # the same server, another address


def test_a_flood_of_made_up_names_cannot_flush_a_real_names_failures():
    """The old table forgot the oldest name once 10,000 others had failed; buckets forget nobody."""
    from stylevault.governance.web.throttle import SignInThrottle

    throttle = SignInThrottle(limit=2, window=900, client_limit=1000, buckets=64)
    assert throttle.attempt("lee", "198.51.100.1", now=0) == 0
    assert throttle.attempt("lee", "198.51.100.2", now=1) == 0
    for n in range(10_000):  # from as many addresses: no per-client limit helps here
        throttle.attempt(f"made-up-{n}", f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", now=2)
    assert throttle.attempt("lee", "203.0.113.9", now=3) == 897
    assert throttle.held() <= 64 * 2 + 64 * 1000  # bounded: buckets x limit, names and clients


def test_the_throttle_forgets_attempts_after_its_window_and_a_success_clears_its_name():
    from stylevault.governance.web.throttle import SignInThrottle

    throttle = SignInThrottle(limit=2, window=60, client_limit=10)
    assert throttle.attempt("lee", "a", now=0) == 0
    assert throttle.attempt("lee", "a", now=10) == 0
    assert throttle.attempt("lee", "a", now=20) == 40  # refused, and not counted
    assert throttle.attempt("lee", "a", now=60) == 0  # the first attempt has aged out
    assert throttle.attempt("lee", "a", now=62) == 8
    throttle.succeeded("lee", "a", now=62)
    assert throttle.attempt("lee", "a", now=62) == 0


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
