"""The web desk's sign-in: passwords, sessions and their generations, the trusted proxy header and
the sign-in throttle. A real catalogue throughout."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import Image
from stylevault.governance.errors import BadInput
from stylevault.governance.legal import review
from stylevault.governance.web.config import WebConfig
from stylevault.governance.web.sessions import COOKIE, Session
from tests.conftest import ON_POSTGRES
from tests.desk import (
    PASSWORD,
    SECRET,
    client_for,
    csrf_of,
    post,
    refusals,
    sign_in,
    states,
)
from tests.factories import lose_a_race
from tests.test_audit import attacker  # noqa: F401  (the fixture: triggers dropped, raw edits)

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
