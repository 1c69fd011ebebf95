"""The console's forms over HTTP: login, password changes ending sessions, errors as pages."""

from __future__ import annotations

import re

from imagify.entrypoints.http.deps import SESSION_COOKIE
from tests.integration.conftest import PASSWORD

FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def console_login(client, username: str, password: str = PASSWORD):
    page = client.get("/console/login")
    return client.post("/console/login", data={"csrf_token": FIELD.search(page.text).group(1),
                                               "username": username, "password": password, "next": "/console/"},
                       follow_redirects=False)


def test_a_login_sets_an_httponly_lax_session_and_a_wrong_password_says_so(client, make_user):
    make_user("ann", "basic")
    wrong = console_login(client, "ann", "not-the-password")
    assert wrong.status_code == 401 and "wrong username or password" in wrong.text
    right = console_login(client, "ann")
    assert right.status_code == 303 and right.headers["location"] == "/console/"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure over HTTPS
    assert "My images" in client.get("/console/").text


def test_changing_the_password_shows_form_errors_and_ends_every_other_session(client, make_user):
    ann = make_user("ann", "basic")
    console_login(client, "ann")
    old_session = client.cookies[SESSION_COOKIE]
    csrf = FIELD.search(client.get("/console/password").text).group(1)
    for fields, message in (({"current": "wrong-password", "new": "n" * 12, "again": "n" * 12}, "current password is wrong"),
                            ({"current": PASSWORD, "new": "short", "again": "short"}, "at least 10 characters"),
                            ({"current": PASSWORD, "new": "n" * 12, "again": "m" * 12}, "the two new passwords differ")):
        response = client.post("/console/password", data={"csrf_token": csrf, **fields})
        assert response.status_code == 400 and message in response.text
    response = client.post("/console/password", data={"csrf_token": csrf, "current": PASSWORD, "new": "n" * 12,
                                                      "again": "n" * 12}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/console/").status_code == 200  # this browser got a new session
    assert client.get("/api/v1/me", headers=ann.headers).status_code == 401  # the old token ended
    client.cookies.clear()
    stale = client.get("/console/", headers={"Cookie": f"{SESSION_COOKIE}={old_session}"}, follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/console/login")


def test_a_domain_error_is_a_page_in_words_never_a_500(client, make_user):
    make_user("ann", "basic")
    console_login(client, "ann")
    response = client.get("/console/?cursor=not-a-cursor")
    assert response.status_code == 400 and "cursor" in response.text and "<html" in response.text
    response = client.get("/console/images/" + "0" * 32)
    assert response.status_code == 404 and "no image with id" in response.text


def test_an_admin_searches_users_by_part_of_the_name_a_page_at_a_time(client, make_user, container):
    make_user("root", "basic", is_admin=True)
    for name in ("anna", "JoAnne", "bob", "an_x", "aNy"):
        container.admin().create_user("tests", name, PASSWORD, ["basic"])
    console_login(client, "root")

    def listed(query: str) -> set[str]:
        page = client.get(f"/console/admin/users?q={query}").text
        return set(re.findall(r'<th scope="row"><a href="/console/admin/users/([^"]+)"', page))

    assert listed("ANN") == {"JoAnne", "anna"}
    assert listed("n_") == {"an_x"}  # "_" is no wildcard
