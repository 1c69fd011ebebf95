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


def test_the_gallery_shows_usage_against_limits_and_an_image_its_live_links_with_revoke_buttons(
    client, make_user, container
):
    from tests.integration.conftest import image_bytes, upload

    container.admin().create_tier(
        "tests", "sharers", ["thumbnail:200", "can_generate_expiring_link"], {"max_images": 3, "max_link_seconds": 600}
    )
    ann = make_user("ann", "sharers")
    image_id = upload(client, ann, image_bytes(size=(40, 30))).json()["id"]
    link = client.post(f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 600}, headers=ann.headers).json()
    console_login(client, "ann")
    usage = re.search(r'id="usage">(.*?)</p>', client.get("/console/").text, re.S).group(1)
    assert "1 of 3 images" in " ".join(usage.split())

    page = client.get(f"/console/images/{image_id}").text
    assert "Live links" in page and link["token"] not in page
    assert 'max="600"' in page  # the form offers no longer link than the tier allows
    link_id = re.search(r'name="link_id" value="([0-9a-f]{16})"', page).group(1)
    csrf = FIELD.search(page).group(1)
    revoked = client.post(f"/console/images/{image_id}/links/revoke",
                          data={"csrf_token": csrf, "link_id": link_id}, follow_redirects=False)  # fmt: skip
    assert revoked.status_code == 303, revoked.text
    assert client.get(f"/l/{link['token']}").status_code == 404
    assert "Live links" not in client.get(f"/console/images/{image_id}").text


def test_an_admin_sets_and_clears_a_tiers_limits_in_the_tier_form(client, make_user, container):
    make_user("root", is_admin=True)
    console_login(client, "root")
    page = client.get("/console/admin/tiers/basic").text
    csrf = FIELD.search(page).group(1)
    form = {"csrf_token": csrf, "height": "200", "max_images": "10", "max_storage_bytes": "",
            "max_upload_bytes": "", "max_link_seconds": "600"}  # fmt: skip
    saved = client.post("/console/admin/tiers/basic", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert container.admin().get_tier("basic").limits.as_dict() == {
        "max_images": 10, "max_storage_bytes": None, "max_upload_bytes": None, "max_link_seconds": 600,
    }
    assert 'name="max_images" type="number" min="0" step="1" inputmode="numeric" class="short" value="10"' in (
        client.get("/console/admin/tiers/basic").text
    )
    bad = client.post("/console/admin/tiers/basic", data={**form, "max_link_seconds": "5"})
    assert bad.status_code == 400 and "max_link_seconds" in bad.text
    client.post("/console/admin/tiers/basic", data={**form, "max_images": "", "max_link_seconds": ""})
    assert container.admin().get_tier("basic").limits.unlimited


def test_the_tier_form_grants_and_withdraws_webp_and_avif(client, make_user, container):
    make_user("root", is_admin=True)
    console_login(client, "root")
    page = client.get("/console/admin/tiers/premium").text
    assert 'name="webp" value="1" checked' in page and 'name="avif" value="1" >' in page
    assert '<input type="hidden" name="shown_on" value="webp">' in page
    form = {"csrf_token": FIELD.search(page).group(1), "shown_height": ["200", "400"], "shown_on": ["webp"],
            "height": ["200", "400"], "avif": "1"}

    assert client.post("/console/admin/tiers/premium", data=form, follow_redirects=False).status_code == 303

    assert container.admin().get_tier("premium").permissions.formats == ["avif"]
    assert '<span class="tag">AVIF</span>' in client.get("/console/admin/tiers").text


def test_saving_the_tier_form_changes_only_what_it_shows(client, make_user, container):
    # Another admin grants a height after this form was read: saving the form keeps it.
    make_user("root", is_admin=True)
    console_login(client, "root")
    page = client.get("/console/admin/tiers/basic").text
    container.admin().patch_tier("other-admin", "basic", add=["thumbnail:800"])
    form = {"csrf_token": FIELD.search(page).group(1), "shown_height": ["200"], "height": ["200", "300"], "links": "1"}

    assert client.post("/console/admin/tiers/basic", data=form, follow_redirects=False).status_code == 303

    assert set(container.admin().get_tier("basic").permissions.codenames) == {
        "can_generate_expiring_link", "thumbnail:200", "thumbnail:300", "thumbnail:800",
    }


def test_a_users_page_shows_their_usage_against_their_limits(client, make_user, container):
    make_user("root", is_admin=True)
    container.admin().create_tier("tests", "small", ["thumbnail:200"], {"max_images": 5})
    make_user("ann", "small")
    console_login(client, "root")
    page = client.get("/console/admin/users/ann").text
    assert '<dd id="usage-images">0 of 5</dd>' in page
    assert '<dd id="usage-bytes">0 Bytes</dd>' in page


def test_two_admins_saving_the_same_tier_at_once_keep_each_others_changes(client, make_user, container):
    make_user("root", is_admin=True)
    console_login(client, "root")
    page = client.get("/console/admin/tiers/premium").text  # both admins see this form
    csrf = FIELD.search(page).group(1)
    shown = {"csrf_token": csrf, "shown_height": ["200", "400"], "shown_on": ["webp"]}
    grants_original = {**shown, "height": ["200", "400"], "webp": "1", "original": "1"}
    adds_a_height = {**shown, "height": ["200", "400", "800"], "webp": "1"}

    for form in (grants_original, adds_a_height):  # the second was read before the first saved
        assert client.post("/console/admin/tiers/premium", data=form, follow_redirects=False).status_code == 303

    assert set(container.admin().get_tier("premium").permissions.codenames) == {
        "thumbnail:200", "thumbnail:400", "thumbnail:800", "format:webp", "can_access_original_image",
    }


def test_logging_out_ends_that_session_only_and_its_old_cookie_is_sent_to_log_in(client, make_user):
    ann = make_user("ann", "basic")
    console_login(client, "ann")
    old_session = client.cookies[SESSION_COOKIE]
    page = client.get("/console/")  # used, so the session is remembered
    assert page.status_code == 200
    response = client.post("/console/logout", data={"csrf_token": FIELD.search(page.text).group(1)},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/login?done=logged-out"
    assert SESSION_COOKIE not in client.cookies  # the cookie is cleared
    # Someone who copied the cookie before gets the login page, not the console.
    stale = client.get("/console/", headers={"Cookie": f"{SESSION_COOKIE}={old_session}"}, follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/console/login")
    as_token = client.get("/api/v1/images", headers={"Authorization": f"Bearer {old_session}"})
    assert as_token.status_code == 401 and "logged out" in as_token.json()["detail"]
    # The same user's other sessions and tokens go on.
    assert client.get("/api/v1/me", headers=ann.headers).status_code == 200
    console_login(client, "ann")
    assert "My images" in client.get("/console/").text
