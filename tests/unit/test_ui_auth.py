"""The web UI's logins, roles, session expiry and CSRF checks, and alias moves from the UI
recorded as the CLI records them (who, why)."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shipyard._apikeys import digest_key
from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.ui import UiAuth, create_app
from shipyard.ui import _auth as ui_auth
from ui_store import fill

ADMIN_KEY = "admin-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"
PREDICT_KEY = "predict-key-0123456789abcdef"
KEYS = {
    digest_key(ADMIN_KEY): "admin",
    digest_key(READ_KEY): "read",
    digest_key(PREDICT_KEY): "predict",
}


@pytest.fixture(scope="module")
def filled_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filled store, made once; each test gets a copy (the tests move aliases)."""
    home = tmp_path_factory.mktemp("ui") / "sy"
    with Store.open(root=home) as opened:
        fill(opened)
    return home


@pytest.fixture
def store(filled_home: Path, tmp_path: Path) -> Iterator[Store]:
    shutil.copytree(filled_home, tmp_path / "sy")
    with Store.open(root=tmp_path / "sy") as opened:
        yield opened


def _client(store: Store, https: bool = False, **auth: object) -> TestClient:
    app = create_app(store, auth=UiAuth(https=https, **auth))  # type: ignore[arg-type]
    return TestClient(app, base_url=f"{'https' if https else 'http'}://127.0.0.1")


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def _login(client: TestClient, key: str, next_page: str = "/runs") -> object:
    token = _csrf(client.get("/login").text)
    return client.post(
        "/login", data={"key": key, "csrf": token, "next": next_page}, follow_redirects=False
    )


def _moves(store: Store) -> list[tuple[str, int | None, int | None, str, str | None]]:
    return [
        (m.alias, m.previous_version, m.version, m.moved_by, m.reason)
        for m in Registry(store).alias_history("penguins")
    ]


# --- without keys (loopback) -----------------------------------------------------------


def test_without_keys_anyone_may_promote_and_roll_back_as_the_cli_records_it(
    store: Store,
) -> None:
    with _client(store, anonymous_user="alice") as client:
        page = client.get("/models/penguins").text
        token = _csrf(page)
        done = client.post(
            "/models/penguins/promote",
            data={"version": "3", "alias": "production", "reason": "fresh data", "csrf": token},
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == "/models/penguins#history"
        shown = client.get(done.headers["location"]).text
        assert "penguins@production: v2 → v3 (fresh data)" in shown
        assert _moves(store)[-1] == ("production", 2, 3, "alice", "fresh data")
        back = client.post(
            "/models/penguins/rollback",
            data={"alias": "production", "reason": "v3 misbehaves", "csrf": token},
            follow_redirects=False,
        )
        assert back.status_code == 303
        assert _moves(store)[-1] == ("production", 3, 2, "alice", "v3 misbehaves")
        assert Registry(store).champion("penguins", "production").version == 2  # type: ignore[union-attr]
        assert "Log in" not in shown and "/login" not in shown


@pytest.mark.parametrize(
    ("path", "form", "text"),
    [
        ("promote", {"version": "2", "alias": "production", "reason": " "}, "reason: say why"),
        (
            "promote",
            {"version": "two", "alias": "production", "reason": "x"},
            "version: &#39;two&#39;",
        ),
        ("promote", {"version": "9", "alias": "production", "reason": "x"}, "version 9"),
        ("promote", {"version": "2", "alias": "Prod!", "reason": "x"}, "alias"),
        ("promote", {"version": "2", "alias": "", "reason": "x"}, "alias: name the alias"),
        ("promote", {"version": "2", "alias": "p", "reason": "y" * 1001}, "at most 1000"),
        ("rollback", {"alias": "staging", "reason": "x"}, "no earlier version"),
        ("rollback", {"alias": "", "reason": "x"}, "alias: choose"),
    ],
)
def test_a_bad_move_shows_the_model_page_with_the_reason_and_moves_nothing(
    store: Store, path: str, form: dict[str, str], text: str
) -> None:
    before = _moves(store)
    with _client(store) as client:
        token = _csrf(client.get("/models/penguins").text)
        response = client.post(f"/models/penguins/{path}", data={**form, "csrf": token})
    assert response.status_code == 400
    assert text in response.text and 'role="alert"' in response.text
    assert "Model penguins" in response.text
    assert _moves(store) == before


def test_a_move_on_an_unknown_model_is_a_404(store: Store) -> None:
    with _client(store) as client:
        token = _csrf(client.get("/models/penguins").text)
        form = {"version": "1", "alias": "production", "reason": "x", "csrf": token}
        assert client.post("/models/ghost/promote", data=form).status_code == 404
        assert client.post("/models/ghost/rollback", data=form).status_code == 404


@pytest.mark.parametrize("token", [None, "", "forged-token-value"])
def test_a_post_without_this_sessions_csrf_token_is_refused(
    store: Store, token: str | None
) -> None:
    before = _moves(store)
    with _client(store) as client:
        client.get("/models/penguins")
        form = {"version": "3", "alias": "production", "reason": "sneaky"}
        if token is not None:
            form["csrf"] = token
        response = client.post("/models/penguins/promote", data=form)
        assert response.status_code == 403 and "CSRF" in response.text
        rolled = client.post("/models/penguins/rollback", data={"alias": "production", **form})
        assert rolled.status_code == 403
    assert _moves(store) == before


def test_another_sessions_token_is_refused(store: Store) -> None:
    with _client(store) as mine, _client(store) as theirs:
        token = _csrf(theirs.get("/models/penguins").text)
        mine.get("/models/penguins")
        form = {"version": "3", "alias": "production", "reason": "x", "csrf": token}
        assert mine.post("/models/penguins/promote", data=form).status_code == 403


def test_a_form_that_is_not_a_form_or_too_large_is_refused(store: Store) -> None:
    with _client(store) as client:
        client.get("/models/penguins")
        as_json = client.post("/models/penguins/promote", json={"version": 3})
        assert as_json.status_code == 415
        huge = client.post("/models/penguins/promote", data={"reason": "x" * 70_000})
        assert huge.status_code == 413

        def chunks() -> Iterator[bytes]:  # no content-length: read up to the limit only
            yield b"reason="
            for _ in range(100):
                yield b"x" * 1024

        headers = {"content-type": "application/x-www-form-urlencoded"}
        streamed = client.post("/models/penguins/promote", content=chunks(), headers=headers)
        assert streamed.status_code == 413


# --- with keys ------------------------------------------------------------------------------


def test_with_keys_every_page_needs_a_login(store: Store) -> None:
    with _client(store, key_roles=KEYS) as client:
        for url in ("/runs?sort=name", "/models", "/models/penguins", "/compare?ids=a,b"):
            response = client.get(url, follow_redirects=False)
            assert response.status_code == 303, url
            assert response.headers["location"].startswith("/login?next=/")
        assert (
            "/login?next=/runs%3Fsort%3Dname"
            in client.get("/runs?sort=name", follow_redirects=False).headers["location"]
        )
        assert client.get("/health").text == "ok"
        assert client.get("/static/ui.css").status_code == 200
        token = _csrf(client.get("/login").text)
        form = {"version": "3", "alias": "production", "reason": "x", "csrf": token}
        assert client.post("/models/penguins/promote", data=form).status_code == 403


def test_a_read_key_sees_pages_but_cannot_move_aliases(store: Store) -> None:
    before = _moves(store)
    with _client(store, key_roles=KEYS) as client:
        response = _login(client, READ_KEY, "/models/penguins")
        assert response.status_code == 303  # type: ignore[attr-defined]
        assert response.headers["location"] == "/models/penguins"  # type: ignore[attr-defined]
        page = client.get("/models/penguins").text
        assert "may look but not move aliases" in page and "Logged in: key " in page
        assert 'action="/models/penguins/promote"' not in page
        form = {"version": "3", "alias": "production", "reason": "x", "csrf": _csrf(page)}
        refused = client.post("/models/penguins/promote", data=form)
        assert refused.status_code == 403 and "role &#39;read&#39;" in refused.text
    assert _moves(store) == before


def test_an_admin_key_promotes_recorded_under_the_keys_name(store: Store) -> None:
    with _client(store, key_roles=KEYS) as client:
        anonymous_token = _csrf(client.get("/login").text)
        _login(client, ADMIN_KEY)
        page = client.get("/models/penguins").text
        token = _csrf(page)
        assert token != anonymous_token  # a login gets a fresh token
        form = {"version": "1", "alias": "production", "reason": "v2 regressed", "csrf": token}
        stale = client.post("/models/penguins/promote", data={**form, "csrf": anonymous_token})
        assert stale.status_code == 403
        done = client.post("/models/penguins/promote", data=form, follow_redirects=False)
        assert done.status_code == 303
    who = f"key {digest_key(ADMIN_KEY)[:8]}"
    assert _moves(store)[-1] == ("production", 2, 1, who, "v2 regressed")


def test_wrong_and_predict_keys_cannot_log_in_and_keys_are_never_shown_or_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with _client(store, key_roles=KEYS) as client:
        wrong = _login(client, "not-a-key-but-long-enough")
        assert wrong.status_code == 401  # type: ignore[attr-defined]
        assert "not one of the UI&#39;s API keys" in wrong.text  # type: ignore[attr-defined]
        assert "not-a-key-but-long-enough" not in wrong.text  # type: ignore[attr-defined]
        predict = _login(client, PREDICT_KEY)
        assert predict.status_code == 401  # type: ignore[attr-defined]
        assert "allows predictions only" in predict.text  # type: ignore[attr-defined]
        missing = client.post("/login", data={"key": ADMIN_KEY}, follow_redirects=False)
        assert missing.status_code == 403  # a login form needs its CSRF token too
        assert client.get("/runs", follow_redirects=False).status_code == 303
        _login(client, ADMIN_KEY)
        pages = [client.get(u).text for u in ("/runs", "/models/penguins")]
    for key in (ADMIN_KEY, READ_KEY, PREDICT_KEY):
        assert all(key not in page and digest_key(key) not in page for page in pages)
        assert key not in caplog.text and digest_key(key) not in caplog.text


def test_the_session_cookie_is_signed_httponly_strict_and_expires(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _client(store, https=True, key_roles=KEYS, session_seconds=3600) as client:
        response = _login(client, READ_KEY)
        cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
        assert cookie.startswith("shipyard_ui=")
        for flag in ("httponly", "samesite=strict", "secure", "max-age=3600", "path=/"):
            assert flag in cookie.lower(), flag
        assert client.get("/runs", follow_redirects=False).status_code == 200
        later = ui_auth.time.time() + 3601
        monkeypatch.setattr(ui_auth.time, "time", lambda: later)
        expired = client.get("/runs", follow_redirects=False)
        assert expired.status_code == 303 and expired.headers["location"].startswith("/login")


def test_a_tampered_cookie_is_no_login(store: Store) -> None:
    with _client(store, key_roles=KEYS) as client:
        _login(client, READ_KEY)
        value = client.cookies["shipyard_ui"]
        client.cookies.set("shipyard_ui", value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB"))
        assert client.get("/runs", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_and_next_never_leaves_the_site(store: Store) -> None:
    with _client(store, key_roles=KEYS) as client:
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            done = _login(client, READ_KEY, target)
            assert done.headers["location"] == "/runs", target  # type: ignore[attr-defined]
        token = _csrf(client.get("/runs").text)
        assert client.post("/logout", data={"csrf": ""}).status_code == 403
        out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/runs", follow_redirects=False).status_code == 303


def test_without_keys_the_login_page_leads_to_the_runs(store: Store) -> None:
    with _client(store) as client:
        assert client.get("/login", follow_redirects=False).headers["location"] == "/runs"
        token = _csrf(client.get("/models/penguins").text)
        done = client.post(
            "/login", data={"csrf": token, "next": "/models"}, follow_redirects=False
        )
        assert done.headers["location"] == "/models"
