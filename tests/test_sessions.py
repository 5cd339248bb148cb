"""Sessions (issue 10 §7): the login cookie is a server-side session, not the bearer token;
it ends on logout, when unused for 8 h and when its user is disabled; it is Secure over
HTTPS (through a trusted proxy too), HttpOnly and SameSite=Strict; state-changing requests
made with it carry a CSRF token, and so does the login form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import COOKIE, SESSION_IDLE, Role, create_user, hash_token
from service.settings import Settings
from service.store import open_store
from tests import ingest_files as f

PEPPER = Settings().token_pepper.get_secret_value()
PROVINCES = ["410000", "610000"]


def _fill(store, tmp) -> dict:
    from service.ingest.pipeline import IngestOptions, ingest

    ingest([str(f.write_units_csv(tmp / "u.csv"))], store, IngestOptions())
    user, token = create_user(store, name="郑州市局", role=Role.REGULATOR, scope="410100",
                              pepper=PEPPER, provinces=PROVINCES)
    return {"user": user, "token": token}


@pytest.fixture()
def site(filled_store):
    """This test's copy of the store ``_fill`` filled: its URL, the user and their token."""
    filled = filled_store(_fill)
    return filled.url, filled.facts["user"], filled.facts["token"]


def app_client(url: str, **settings) -> TestClient:
    return TestClient(create_app(Settings(store=url, **settings)), follow_redirects=False)


def log_in(client: TestClient, token: str, headers: dict | None = None):
    form = client.get("/login", params={"next": "/api/layers"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post("/login", data={"token": token, "csrf": csrf, "next": "/api/layers"},
                       headers=headers or {})


def session_cookie(response) -> str:
    header = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith(COOKIE + "="))
    return header


def test_the_cookie_is_a_session_id_not_the_token(site):
    url, _user, token = site
    with app_client(url) as client:
        r = log_in(client, token)
        assert r.status_code == 303 and r.headers["location"] == "/api/layers"
        header = session_cookie(r)
        value = client.cookies.get(COOKIE)
        assert value and token not in header and value != token
        assert "HttpOnly" in header and "SameSite=strict" in header.replace("Strict", "strict")
        assert "Secure" not in header  # plain HTTP here
        assert client.get("/api/layers").status_code == 200


def test_the_login_form_needs_its_csrf_token(site):
    url, _user, token = site
    with app_client(url) as client:
        client.get("/login")
        r = client.post("/login", data={"token": token})
        assert r.status_code == 403 and COOKIE not in r.headers.get("set-cookie", "")
        r = client.post("/login", data={"token": token, "csrf": "forged"})
        assert r.status_code == 403
    with app_client(url) as other:  # a token from another browser's form does not help
        form = other.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    with app_client(url) as client:
        assert client.post("/login", data={"token": token, "csrf": csrf}).status_code == 403


def test_state_changing_requests_by_cookie_carry_the_csrf_token(site):
    url, _user, token = site
    with app_client(url) as client:
        log_in(client, token)
        body = {"credit_code": f.UNIT_A, "checked_on": "2026-10-09", "result": "符合"}
        refused = client.post("/api/checks", json=body)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        csrf = client.get("/api/session").json()["csrf_token"]
        allowed = client.post("/api/checks", json=body, headers={"X-CSRF-Token": csrf})
        assert allowed.status_code != 403, allowed.text  # past the CSRF check
        # a bearer token needs none: it is not sent by a browser on its own
        with app_client(url) as api:
            r = api.post("/api/checks", json=body,
                         headers={"Authorization": f"Bearer {token}"})
            assert r.status_code != 403


def test_logout_ends_the_session_on_the_server(site):
    url, _user, token = site
    with app_client(url) as client:
        log_in(client, token)
        stolen = client.cookies.get(COOKIE)
        assert client.get("/logout").status_code == 303
    with app_client(url) as thief:
        thief.cookies.set(COOKIE, stolen)
        assert thief.get("/api/layers").status_code == 401


def _refused_after(site, change) -> None:
    """Log in, ``change(store, user, session cookie)``, then the cookie is refused (by a
    new app, so no recognised session is remembered)."""
    url, user, token = site
    with app_client(url) as client:
        log_in(client, token)
        cookie = client.cookies.get(COOKIE)
    with open_store(url) as store:
        change(store, user, cookie)
    with app_client(url) as client:
        client.cookies.set(COOKIE, cookie)
        assert client.get("/api/layers").status_code == 401


def test_a_disabled_users_sessions_end_with_their_token(site):
    _refused_after(site, lambda store, user, _cookie: store.disable_user(user.user_id))


def test_a_session_unused_for_the_idle_time_ends(site):
    long_ago = datetime.now(UTC).replace(tzinfo=None) - SESSION_IDLE - timedelta(minutes=1)
    _refused_after(site, lambda store, _user, cookie: store.touch_session(
        hash_token(cookie, PEPPER), long_ago))


@pytest.mark.parametrize(("trust", "headers", "secure"), [
    (False, {"X-Forwarded-Proto": "https"}, False),  # a header anyone can send
    (True, {"X-Forwarded-Proto": "https"}, True),
    (True, {}, False),
])
def test_the_cookie_is_secure_behind_https(site, trust, headers, secure):
    url, _user, token = site
    with app_client(url, trust_proxy=trust) as client:
        header = session_cookie(log_in(client, token, headers))
    assert ("Secure" in header) is secure


def test_the_cookie_is_secure_when_served_over_https_directly(site):
    url, _user, token = site
    client = TestClient(create_app(Settings(store=url)), base_url="https://testserver",
                        follow_redirects=False)
    with client:
        assert "Secure" in session_cookie(log_in(client, token))
