"""The `imagify` command: migrate, users and tiers, each failing with one clear line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from imagify.entrypoints.cli import main
from tests.integration.faults import TcpProxy, host_port, through


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    env = {"IMAGIFY_DATA_DIR": str(tmp_path / "var"), "IMAGIFY_ADMIN_PASSWORD": ""}
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, **extra_env: str):
        return runner.invoke(main, list(args), env={**env, **extra_env}, input=input)

    return invoke


@pytest.fixture
def migrated(run):
    result = run("migrate")
    assert result.exit_code == 0, result.output
    return result


def test_migrate_creates_the_first_admin_and_prints_its_password_once(run):
    first = run("migrate")
    assert first.exit_code == 0, first.output
    assert "applied 0001, 0002, 0003, 0004, 0005, 0006, 0007; the database" in first.output
    assert "is at 0007" in first.output
    password = first.output.split("shown only once:")[1].split()[0]
    assert len(password) >= 16
    again = run("migrate")
    assert again.exit_code == 0 and "shown only once" not in again.output
    assert "is already at 0007; nothing to apply" in again.output
    assert "admin [admin]" in run("users", "list").output


def test_migrate_takes_the_admin_password_from_the_environment(run):
    result = run("migrate", IMAGIFY_ADMIN_PASSWORD="chosen-admin-password")
    assert result.exit_code == 0 and "shown only once" not in result.output


def test_users_create_list_and_set_tiers(run, migrated):
    created = run("users", "create", "ann", "--password", "a-long-password", "--tier", "basic")
    assert created.exit_code == 0, created.output
    assert "created ann (tiers: basic)" in created.output
    assert run("users", "set-tiers", "ann", "premium", "enterprise").exit_code == 0
    listing = run("users", "list").output.splitlines()
    assert "ann\tenterprise, premium" in listing


def test_users_create_reads_the_password_from_stdin_with_a_dash(run, migrated):
    result = run("users", "create", "bob", "--password", "-", "--admin", input="from-stdin-password\n")
    assert result.exit_code == 0, result.output
    assert "bob [admin]" in run("users", "list").output


def test_tiers_create_and_list(run, migrated):
    result = run("tiers", "create", "photographers", "--thumbnail", "100", "--thumbnail", "600",
                 "--expiring-links")
    assert result.exit_code == 0, result.output
    lines = run("tiers", "list").output.splitlines()
    assert "photographers\tthumbnail:100 thumbnail:600 can_generate_expiring_link" in lines
    assert "basic\tthumbnail:200" in lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "create", "ann", "--password", "short"), "at least 10 characters"),
        (("users", "create", "ann", "--password", "a-long-password", "--tier", "gold"), "unknown tier"),
        (("users", "create", "admin", "--password", "a-long-password"), "already exists"),
        (("users", "set-tiers", "nobody", "basic"), "no user named"),
        (("users", "set-tiers", "admin", "gold"), "unknown tier"),
        (("tiers", "create", "basic", "--thumbnail", "100"), "already exists"),
        (("tiers", "create", "huge", "--thumbnail", "5000"), "between 1 and 4096"),
        (("tiers", "create", "neg", "--thumbnail", "-5"), "thumbnail height must be between 1 and 4096, got -5"),
        (("tiers", "create", "zero", "--thumbnail", "0"), "thumbnail height must be between 1 and 4096, got 0"),
        (("tiers", "edit", "basic", "--thumbnail", "-5"), "thumbnail height must be between 1 and 4096, got -5"),
        (("tiers", "edit", "basic"), "nothing to change"),
        (("tiers", "edit", "gold", "--original"), "no tier named 'gold'"),
        (("tiers", "show", "gold"), "no tier named 'gold'"),
        (("tiers", "delete", "gold"), "no tier named 'gold'"),
        (("tiers", "delete", "enterprise"), "tier 'enterprise' is held by 1 user; move them to another tier first"),
        (("users", "set-tiers", "admin"), "give --none to remove every tier"),
        (("users", "set-tiers", "admin", "basic", "--none"), "not both"),
        (("users", "show", "nobody"), "no user named 'nobody'"),
        (("users", "delete", "nobody"), "no user named 'nobody'"),
        (("users", "set-password", "nobody", "--password", "a-long-password"), "no user named 'nobody'"),
        (("users", "set-password", "admin", "--password", "short"), "at least 10 characters"),
        (("users", "set-password", "admin"), "no terminal to ask for the password: give --password -"),
        (("tiers", "create", "bad name", "--thumbnail", "100"), "tier name"),
    ],
)
def test_bad_input_fails_with_one_line_and_no_traceback(run, migrated, args, message):
    result = run(*args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_a_command_on_an_unmigrated_database_says_to_migrate(run):
    result = run("users", "list")
    assert result.exit_code == 1
    assert "imagify migrate" in result.output and "Traceback" not in result.output


def test_a_bad_setting_fails_with_one_line(run):
    result = run("tiers", "list", IMAGIFY_MAX_UPLOAD_BYTES="lots")
    assert result.exit_code == 1
    assert result.output.strip() == "error: IMAGIFY_MAX_UPLOAD_BYTES must be an integer, got 'lots'"


def test_the_cli_goes_through_the_audited_admin_use_cases(run, migrated, caplog):
    with caplog.at_level("INFO", logger="imagify.audit"):
        run("tiers", "create", "pro", "--thumbnail", "800")
    assert [(r.actor, r.action, r.target) for r in caplog.records if r.name == "imagify.audit"] == [
        ("cli", "tier.create", "pro")
    ]


def test_a_change_the_servers_could_not_be_told_of_is_saved_with_a_warning(run, mysql_database, redis_client, redis_url):
    env = {"IMAGIFY_DATABASE_URL": mysql_database(), "IMAGIFY_SECRET_KEY": "cli-test-secret-of-at-least-32-characters"}
    with TcpProxy(*host_port(redis_url)) as proxy:
        env["IMAGIFY_REDIS_URL"] = through(redis_url, proxy)
        migrated = run("migrate", **env)
        assert migrated.exit_code == 0 and "warning" not in migrated.stderr, migrated.output
        proxy.down()
        created = run("users", "create", "ann", "--password", "a-long-password", **env)
    assert created.exit_code == 0, created.output
    assert "created ann" in created.stdout
    assert "warning: the change is saved, but Redis could not be told of it" in created.stderr
    assert "ann\t-" in run("users", "list", **env).stdout


def test_users_show_lists_tiers_and_permissions(run, migrated):
    run("users", "create", "ann", "--password", "a-long-password", "--tier", "premium")
    result = run("users", "show", "ann")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "user:        ann",
        "tiers:       premium",
        "permissions: thumbnail:200 thumbnail:400 format:webp",
        "usage:       0 images, 0 bytes",
        "limits:      max_images=unlimited max_storage_bytes=unlimited max_upload_bytes=unlimited "
        "max_link_seconds=unlimited",
    ]


def test_users_set_tiers_none_removes_every_tier(run, migrated):
    run("users", "create", "ann", "--password", "a-long-password", "--tier", "basic")
    result = run("users", "set-tiers", "ann", "--none")
    assert result.exit_code == 0 and "ann: no tiers" in result.output
    assert "ann\t-" in run("users", "list").output


def test_users_set_password_from_stdin_lets_the_user_log_in_with_it(run, migrated):
    run("users", "create", "ann", "--password", "a-long-password")
    result = run("users", "set-password", "ann", "--password", "-", input="another-long-password\n")
    assert result.exit_code == 0 and "ann: password changed" in result.output
    from imagify.entrypoints.container import build_container
    from imagify.settings import load_settings

    auth = build_container(load_settings({"IMAGIFY_DATA_DIR": "var"})).auth()
    assert auth.issue_token("ann", "another-long-password")


def test_users_set_password_prompts_without_echo_on_a_terminal(run, migrated, monkeypatch):
    monkeypatch.setattr("imagify.entrypoints.cli.common.stdin_is_terminal", lambda: True)
    result = run("users", "set-password", "admin", input="prompted-password\nprompted-password\n")
    assert result.exit_code == 0 and "admin: password changed" in result.output, result.output
    assert "Password:" in result.output and "prompted-password" not in result.output  # not echoed


def test_users_delete_removes_the_user(run, migrated):
    run("users", "create", "ann", "--password", "a-long-password")
    result = run("users", "delete", "ann")
    assert result.exit_code == 0 and "deleted user ann" in result.output
    assert "ann" not in run("users", "list").output


def test_tiers_show_says_what_a_tier_grants(run, migrated):
    result = run("tiers", "show", "enterprise")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "tier:           enterprise",
        "thumbnails:     200, 400",
        "original:       yes",
        "expiring links: yes",
        "formats:        jpeg, png, avif, webp",
        "permissions:    thumbnail:200 thumbnail:400 can_access_original_image can_generate_expiring_link "
        "format:avif format:webp",
        "limits:         max_images=unlimited max_storage_bytes=unlimited max_upload_bytes=unlimited "
        "max_link_seconds=unlimited",
    ]


def test_tiers_edit_replaces_heights_and_keeps_what_is_not_given(run, migrated):
    run("tiers", "create", "pro", "--thumbnail", "100", "--original")
    result = run("tiers", "edit", "pro", "--thumbnail", "300", "--thumbnail", "50", "--expiring-links")
    assert result.exit_code == 0, result.output
    assert "pro\tthumbnail:50 thumbnail:300 can_access_original_image can_generate_expiring_link" in (
        run("tiers", "list").output.splitlines()
    )
    assert run("tiers", "edit", "pro", "--no-original", "--no-expiring-links").exit_code == 0
    assert "pro\tthumbnail:50 thumbnail:300" in run("tiers", "list").output.splitlines()


def test_tiers_grant_and_withdraw_formats_and_an_edit_keeps_what_it_does_not_name(run, migrated):
    created = run("tiers", "create", "web", "--thumbnail", "200", "--webp")
    assert created.exit_code == 0, created.output
    assert "format:webp" in created.output
    # An edit of other permissions leaves the formats alone (it used to drop them).
    assert run("tiers", "edit", "premium", "--original", "--thumbnail", "200").exit_code == 0
    shown = run("tiers", "show", "premium").output
    assert "formats:        jpeg, png, webp" in shown and "thumbnails:     200\n" in shown
    assert run("tiers", "edit", "premium", "--avif", "--no-webp").exit_code == 0
    assert "formats:        jpeg, png, avif" in run("tiers", "show", "premium").output


def test_tiers_edit_sets_and_removes_limits_and_users_show_reports_them(run, migrated):
    run("tiers", "create", "pro", "--thumbnail", "100", "--max-images", "5")
    result = run("tiers", "edit", "pro", "--max-storage-bytes", "1000", "--max-link-seconds", "600")
    assert result.exit_code == 0, result.output
    assert "max_images=5 max_storage_bytes=1000 max_upload_bytes=unlimited max_link_seconds=600" in result.output
    assert run("tiers", "edit", "pro", "--max-images", "none").exit_code == 0
    run("users", "create", "ann", "--password", "a-long-password", "--tier", "pro")
    shown = run("users", "show", "ann").output
    assert "limits:      max_images=unlimited max_storage_bytes=1000" in shown
    assert "usage:       0 images, 0 bytes" in shown
    assert "thumbnail:100" in run("tiers", "show", "pro").output  # permissions kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-images", "-1"), "max-images"),
        (("--max-images", "lots"), "max-images"),
        (("--max-link-seconds", "10"), "max_link_seconds"),
        (("--max-upload-bytes", str(10**12)), "server"),
    ],
)
def test_a_bad_limit_on_the_command_line_fails_with_one_line(run, migrated, args, message):
    result = run("tiers", "edit", "basic", *args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_tiers_delete_removes_a_tier_nobody_holds(run, migrated):
    run("tiers", "create", "pro", "--thumbnail", "100")
    result = run("tiers", "delete", "pro")
    assert result.exit_code == 0 and "deleted tier pro" in result.output
    assert "pro" not in run("tiers", "list").output


def test_a_short_admin_password_in_the_environment_is_refused(run):
    result = run("migrate", IMAGIFY_ADMIN_PASSWORD="short")
    assert result.exit_code == 1
    assert "error: IMAGIFY_ADMIN_PASSWORD: password must be at least 10 characters long" in result.output


def test_the_admin_password_variable_is_said_to_be_ignored_once_an_admin_exists(run, migrated):
    result = run("migrate", IMAGIFY_ADMIN_PASSWORD="chosen-admin-password")
    assert result.exit_code == 0
    assert "IMAGIFY_ADMIN_PASSWORD is ignored: an admin exists already" in result.stderr


def test_run_from_another_folder_a_command_names_the_missing_database_and_creates_nothing(run, tmp_path):
    result = run("users", "list", IMAGIFY_DATA_DIR=str(tmp_path / "elsewhere"))
    assert result.exit_code == 1
    assert f"error: no database at {tmp_path / 'elsewhere' / 'imagify.db'}" in result.stderr
    assert "imagify migrate" in result.stderr and not (tmp_path / "elsewhere").exists()


def test_migrate_warns_before_creating_a_new_data_folder(run, tmp_path):
    result = run("migrate", IMAGIFY_DATA_DIR=str(tmp_path / "elsewhere"))
    assert result.exit_code == 0
    assert f"warning: creating a new, empty data folder {tmp_path / 'elsewhere'}" in result.stderr


def test_a_database_error_names_the_database(run, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "imagify.db").touch()
    result = run("users", "list", IMAGIFY_DATA_DIR=str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert f"database error on {tmp_path / 'empty' / 'imagify.db'} (no such table" in result.stderr


def test_serve_fails_fast_with_a_hint_when_the_port_is_taken(run):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"error: port {port} on 127.0.0.1 is already in use" in result.output
    assert f"make run PORT={port + 1}" in result.output


def container_with_ann(run, tmp_path):  # type: ignore[no-untyped-def]
    """The CLI's container for the test's data folder, and the user 'ann' it created."""
    from imagify.entrypoints.container import build_container
    from imagify.settings import load_settings

    assert run("users", "create", "ann", "--password", "a-long-password", "--tier", "basic").exit_code == 0
    app = build_container(load_settings({"IMAGIFY_DATA_DIR": str(tmp_path / "var")}))
    with app.uow()() as uow:
        return app, uow.users.get_by_username("ann")


def test_backfill_placeholders_fills_in_images_uploaded_before_placeholders(run, migrated, tmp_path):
    import io

    from PIL import Image

    from imagify.adapters.sql.tables import images as images_table
    from imagify.entrypoints.container import build_container
    from imagify.settings import load_settings

    app, ann = container_with_ann(run, tmp_path)
    try:
        uploaded = {}
        for fmt in ("JPEG", "PNG"):
            photo = io.BytesIO()
            Image.new("RGB", (900, 600), (20, 40, 200)).save(photo, fmt)
            uploaded[fmt] = app.images().upload(ann, f"old.{fmt.lower()}", photo, len(photo.getvalue()))
        assert uploaded["PNG"].placeholder is None  # the upload check does not decode a PNG
        with app.engine().begin() as db:  # as an upload from before migration 0005 left it
            db.execute(images_table.update().values(placeholder_thumbhash=None, placeholder_color=None))
    finally:
        app.decode_pool().close()

    result = run("backfill-placeholders")
    assert result.exit_code == 0, result.output
    assert "2 placeholders made" in result.output
    again = build_container(load_settings({"IMAGIFY_DATA_DIR": str(tmp_path / "var")}))
    with again.uow()() as uow:
        for image in uploaded.values():
            made = uow.images.get(ann.id, image.id).placeholder
            assert made is not None and made.color.startswith("#") and made.aspect_ratio == 1.5
            r, g, b = (int(made.color[i:i + 2], 16) for i in (1, 3, 5))
            assert r < 50 and g < 70 and b > 180
    assert "0 placeholders made" in run("backfill-placeholders").output


def test_backfill_previews_gives_a_2_mp_jpeg_uploaded_before_previews_its_preview(run, migrated, tmp_path):
    import io

    from PIL import Image

    from imagify.adapters.sql.tables import images as images_table
    from imagify.entrypoints.container import build_container
    from imagify.settings import load_settings

    app, ann = container_with_ann(run, tmp_path)
    try:
        uploaded = []
        for size in ((1632, 1224), (900, 600)):
            photo, out = Image.merge("RGB", [Image.effect_noise(size, 30)] * 3), io.BytesIO()
            photo.save(out, "JPEG", quality=90)
            uploaded.append(app.images().upload(ann, "old.jpg", out, len(out.getvalue())))
        large, small = uploaded
        assert large.preview_key is not None and small.preview_key is None
        app.blobs().delete(large.preview_key)  # as an upload from before 2 MP previews left it
        with app.engine().begin() as db:
            db.execute(images_table.update().values(preview_height=None))
    finally:
        app.decode_pool().close()

    result = run("backfill-previews")
    assert result.exit_code == 0, result.output
    assert "1 previews made; 1 images need none" in result.output
    again = build_container(load_settings({"IMAGIFY_DATA_DIR": str(tmp_path / "var")}))
    try:
        with again.uow()() as uow:
            assert uow.images.get(ann.id, large.id).preview_height == 612
            assert uow.images.get(ann.id, small.id).preview_height is None
        preview = again.blobs().open(f"previews/{large.id}")
        try:
            assert Image.open(preview.stream).size == (816, 612)
        finally:
            preview.stream.close()
    finally:
        again.decode_pool().close()
    assert "0 previews made; 1 images need none" in run("backfill-previews").output

