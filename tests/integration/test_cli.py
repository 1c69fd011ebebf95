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
    assert "database is up to date" in first.output
    password = first.output.split("shown only once:")[1].split()[0]
    assert len(password) >= 16
    again = run("migrate")
    assert again.exit_code == 0 and "shown only once" not in again.output
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
