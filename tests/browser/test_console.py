"""The web console in a real browser against a real `imagify serve`."""

from __future__ import annotations

import base64

import httpx

from tests.browser.conftest import ADMIN_PASSWORD, PHONE, image_file, log_in, shot

USER_PASSWORD = "a-long-password-for-pat"
http = httpx.Client(timeout=60)  # a real server on a busy machine


def drop_files(page, files: list[tuple[str, str, bytes]]) -> None:
    """Drag and drop files onto the page, as a person dragging them from a file manager."""
    page.evaluate(
        """(files) => {
            const data = new DataTransfer();
            for (const [name, type, b64] of files) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                data.items.add(new File([bytes], name, { type }));
            }
            const drop = document.getElementById("drop");
            drop.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true }));
            drop.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true }));
        }""",
        [[name, kind, base64.b64encode(data).decode()] for name, kind, data in files],
    )


def upload_row(page, filename: str):
    return page.locator("#uploads li").filter(has=page.locator(".file", has_text=filename))


def rendition_captions(page) -> list[str]:
    return page.locator(".renditions figcaption").all_inner_texts()


def test_a_user_uploads_by_drop_and_picker_sees_the_gallery_shares_a_link_and_deletes(new_page, server):
    page = new_page()
    log_in(page, "admin", ADMIN_PASSWORD)
    shot(page, "gallery-empty")
    drop_files(page, [("sunset.png", "image/png", image_file("PNG", (900, 600))),
                      ("notes.txt", "text/plain", b"these are not the pixels you are looking for")])
    page.locator("#files").set_input_files(
        [{"name": "harbour.jpg", "mimeType": "image/jpeg", "buffer": image_file("JPEG", (500, 700), (200, 80, 40))}]
    )
    for name in ("sunset.png", "harbour.jpg"):
        upload_row(page, name).locator(".status.done").wait_for()
    error = upload_row(page, "notes.txt").locator(".status.error")
    error.wait_for()
    assert "image" in error.inner_text()  # the API's detail, in words, beside the file
    assert page.locator("#grid .tile").count() == 2  # added without a reload
    shot(page, "gallery-uploads")

    page.reload()
    names = page.locator("#grid .tile .name").all_inner_texts()
    assert sorted(names) == ["harbour.jpg", "sunset.png"]
    assert "900×600" in page.locator(".tile", has_text="sunset.png").inner_text()
    # Every tile shows its 400 px thumbnail (waited for: they load after the page).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalHeight === 400)"
    )

    page.get_by_role("link", name="sunset.png").first.click()
    page.wait_for_url("**/console/images/*")
    assert rendition_captions(page)[:2] == ["200 px high", "400 px high"]
    assert "Original" in rendition_captions(page)[2]
    page.wait_for_function("[...document.querySelectorAll('.renditions img')].every(i => i.complete && i.naturalWidth > 0)")
    page.get_by_role("button", name="5 minutes").click()
    link = page.get_by_label("Link, valid until", exact=False).input_value()
    assert "/l/" in link
    page.get_by_role("button", name="Copy").click()
    shot(page, "image-with-link")

    stranger = new_page()  # a fresh context: no session at all
    response = stranger.request.get(link)
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    assert http.get(link).status_code == 200

    page.get_by_role("link", name="Delete this image…").click()
    shot(page, "image-confirm-delete")
    page.get_by_role("button", name="Yes, delete it").click()
    page.wait_for_url("**/console/?done=deleted")
    assert page.get_by_role("status").inner_text() == "The image was deleted."
    assert page.locator("#grid .tile .name").all_inner_texts() == ["harbour.jpg"]
    assert http.get(link).status_code == 404


def test_an_admin_makes_a_tier_and_a_user_who_sees_exactly_its_renditions_until_downgraded(new_page):
    admin = new_page()
    log_in(admin, "admin", ADMIN_PASSWORD)
    admin.get_by_role("link", name="Tiers").click()
    admin.get_by_role("link", name="New tier").click()
    admin.get_by_label("Name").fill("photographers")
    for height in ("120", "300"):
        admin.get_by_label("Add a height", exact=False).fill(height)
        admin.get_by_label("Add a height", exact=False).press("Enter")
    admin.get_by_role("switch", name="Expiring links").check()
    shot(admin, "tier-new")
    admin.get_by_role("button", name="Create tier").click()
    admin.wait_for_url("**/console/admin/tiers/photographers?done=tier-created")
    admin.get_by_role("link", name="← Tiers").click()
    row = admin.locator("tr", has_text="photographers")
    assert "120 px" in row.inner_text() and "300 px" in row.inner_text() and "expiring links" in row.inner_text()
    assert row.locator("td.num").inner_text() == "0"
    shot(admin, "tiers")

    admin.get_by_role("link", name="Users").click()
    admin.get_by_role("link", name="New user").click()
    admin.get_by_label("Username").fill("pat")
    admin.get_by_label("Password", exact=False).fill(USER_PASSWORD)
    admin.get_by_label("photographers").check()
    admin.get_by_role("button", name="Create user").click()
    admin.wait_for_url("**/console/admin/users/pat?done=user-created")
    shot(admin, "user")
    admin.goto("/console/admin/tiers")
    assert admin.locator("tr", has_text="photographers").locator("td.num").inner_text() == "1"
    admin.goto("/console/admin/tiers/photographers?confirm=delete")
    admin.get_by_role("button", name="Yes, delete it").click()
    assert "held by 1 user" in admin.get_by_role("alert").inner_text()  # refused, with the reason

    pat = new_page(PHONE)
    log_in(pat, "pat", USER_PASSWORD)
    pat.locator("#files").set_input_files(
        [{"name": "dune.png", "mimeType": "image/png", "buffer": image_file("PNG", (800, 800))}]
    )
    upload_row(pat, "dune.png").locator(".status.done").wait_for()
    shot(pat, "phone-gallery")
    pat.get_by_role("link", name="dune.png").first.click()
    assert rendition_captions(pat) == ["120 px high", "300 px high"]
    assert pat.get_by_role("button", name="Create link").is_visible()
    assert pat.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(pat, "phone-image")

    admin.goto("/console/admin/users/pat")
    admin.get_by_label("photographers").uncheck()
    admin.get_by_label("basic").check()
    admin.get_by_role("button", name="Save").click()
    admin.wait_for_url("**/console/admin/users/pat?done=user-saved")

    pat.reload()  # the downgrade shows on the next page load
    assert rendition_captions(pat) == ["200 px high"]
    assert pat.get_by_role("button", name="Create link").count() == 0
    assert pat.locator("#share").count() == 0

    copied = [c for c in pat.context.cookies() if c["name"] == "imagify_session"]
    assert copied
    pat.get_by_role("button", name="Log out").click()
    pat.wait_for_url("**/console/login?done=logged-out")
    pat.goto("/console/")
    assert "/console/login" in pat.url
    pat.context.add_cookies(copied)  # as someone who copied the cookie before the logout
    pat.goto("/console/")
    assert "/console/login" in pat.url


def test_a_form_posted_without_its_csrf_token_is_refused(new_page):
    page = new_page()
    log_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/console/admin/tiers/new")
    page.locator("#tier-form input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_label("Name").fill("sneaky")
    page.get_by_role("button", name="Create tier").click()
    assert "security token" in page.get_by_role("alert").inner_text()
    shot(page, "csrf-refused")
    for headers in ({}, {"X-CSRF-Token": "0" * 64}):
        response = page.request.post("/console/images", headers=headers, multipart={"file": {
            "name": "a.png", "mimeType": "image/png", "buffer": image_file()}})
        assert response.status == 403
    page.goto("/console/admin/tiers")
    assert page.locator("tr", has_text="sneaky").count() == 0
    assert page.request.post("/console/logout", form={}).status == 403
    page.goto("/console/")
    assert page.url.endswith("/console/")  # still logged in


def test_every_page_fits_a_phone_and_a_laptop_without_sideways_scrolling(new_page):
    """The login, password and admin pages at both widths (and their screenshots)."""
    for name, viewport in (("desktop", None), ("phone", PHONE)):
        page = new_page(viewport) if viewport else new_page()
        page.goto("/console/login")
        shot(page, f"{name}-login")
        log_in(page, "admin", ADMIN_PASSWORD)
        for path, title in (("/console/password", "password"), ("/console/admin/users", "users"),
                            ("/console/admin/tiers", "tiers"), ("/console/admin/tiers/basic", "tier")):
            page.goto(path)
            assert page.locator("h1").count() == 1
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (name, path)
            shot(page, f"{name}-{title}")
