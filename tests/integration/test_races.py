"""Two administrators, or an administrator and an upload, at the same moment, on SQLite and
MariaDB: the first transaction holds what it locked while the second starts, and the
invariants hold whichever way the second then goes."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from dependency_injector import providers

from imagify.domain.errors import Conflict, DomainError, InvalidInput, Unauthorized
from imagify.domain.ports import UnitOfWork, UnitOfWorkFactory
from imagify.entrypoints.container import Container
from tests.integration.conftest import PASSWORD, image_bytes

pytestmark = pytest.mark.integration

PAUSE = 0.5  # how long the first transaction waits, uncommitted, once the second has started


@pytest.fixture(params=["embedded", "cloud"])
def backend(request: pytest.FixtureRequest) -> str:
    """Locks are the database's: the Lambda backend adds nothing here."""
    return str(request.param)


class FirstCommitWaits:
    """Units of work whose first commit in the thread named 'first' lets the second thread
    start, then waits a while before committing: the first holds its locks meanwhile."""

    def __init__(self, inner: UnitOfWorkFactory) -> None:
        self._inner = inner
        self.barrier = threading.Barrier(2, timeout=10)
        self._paused = False

    def __call__(self) -> UnitOfWork:
        uow = self._inner()
        if threading.current_thread().name == "first" and not self._paused:
            commit = uow.commit

            def commit_later() -> None:
                self._paused = True
                self.barrier.wait()
                time.sleep(PAUSE)
                commit()

            uow.commit = commit_later  # type: ignore[method-assign]
        return uow


@pytest.fixture
def paused(container: Container) -> FirstCommitWaits:
    units = FirstCommitWaits(container.uow())
    container.uow.override(providers.Object(units))
    return units


def race(paused: FirstCommitWaits, first: Callable[[], object], second: Callable[[], object]) -> dict[str, object]:
    """Run `first` until it commits, then `second` while it waits; what each returned or raised."""
    outcome: dict[str, object] = {}

    def run(name: str, action: Callable[[], object]) -> None:
        if name == "second":
            paused.barrier.wait()
        try:
            outcome[name] = action()
        except DomainError as error:
            outcome[name] = error

    threads = [threading.Thread(target=run, args=(n, a), name=n) for n, a in (("first", first), ("second", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcome


def admins(container: Container) -> list[str]:
    users, _ = container.admin().list_users()
    return [u.username for u in users if u.is_admin]


def test_two_admins_demoting_each_other_at_once_leave_one_admin(container, paused) -> None:
    admin = container.admin()
    for name in ("alice", "bob"):
        admin.create_user("tests", name, PASSWORD, [], is_admin=True)
    outcome = race(
        paused,
        lambda: admin.update_user("alice", "bob", is_admin=False),
        lambda: admin.update_user("bob", "alice", is_admin=False),
    )
    assert admins(container) == ["alice"]
    assert isinstance(outcome["second"], Conflict)
    assert "at least one admin must remain" in str(outcome["second"])


def test_two_admins_deleting_each_other_at_once_leave_one_admin(container, paused) -> None:
    admin = container.admin()
    for name in ("alice", "bob"):
        admin.create_user("tests", name, PASSWORD, [], is_admin=True)
    outcome = race(
        paused,
        lambda: admin.delete_user("alice", "bob"),
        lambda: admin.delete_user("bob", "alice"),
    )
    assert admins(container) == ["alice"]
    assert isinstance(outcome["second"], Conflict)


def test_a_tier_deleted_while_being_assigned_is_not_deleted(container, paused) -> None:
    admin = container.admin()
    admin.create_tier("tests", "gold", ["thumbnail:200"])
    admin.create_user("tests", "carol", PASSWORD, ["basic"])
    outcome = race(
        paused,
        lambda: admin.update_user("tests", "carol", tiers=["basic", "gold"]),
        lambda: admin.delete_tier("tests", "gold"),
    )
    assert isinstance(outcome["second"], Conflict)
    assert [t.name for t in admin.list_tiers()].count("gold") == 1
    assert admin.get_user("carol").tiers == ["basic", "gold"]


def test_a_tier_assigned_while_being_deleted_is_refused(container, paused) -> None:
    admin = container.admin()
    admin.create_tier("tests", "gold", ["thumbnail:200"])
    admin.create_user("tests", "carol", PASSWORD, ["basic"])
    outcome = race(
        paused,
        lambda: admin.delete_tier("tests", "gold"),
        lambda: admin.update_user("tests", "carol", tiers=["basic", "gold"]),
    )
    assert isinstance(outcome["second"], InvalidInput)
    assert "gold" not in [t.name for t in admin.list_tiers()]
    assert admin.get_user("carol").tiers == ["basic"]


def upload_as(container: Container, username: str) -> Callable[[], object]:
    owner = container.admin().get_user(username)
    data = image_bytes()
    return lambda: container.images().upload(owner, "cat.jpg", io.BytesIO(data), len(data))


def stored_originals(container: Container) -> list[str]:
    return list(container.blobs().keys("originals/"))


def test_an_upload_finishing_after_its_owner_was_deleted_fails(container, paused) -> None:
    admin = container.admin()
    admin.create_user("tests", "dave", PASSWORD, ["basic"])
    dave_id = admin.get_user("dave").id
    outcome = race(paused, lambda: admin.delete_user("tests", "dave"), upload_as(container, "dave"))
    assert isinstance(outcome["second"], Unauthorized)
    with container.uow()() as uow:
        assert uow.images.ids_owned(dave_id) == []
    assert stored_originals(container) == []


def test_an_upload_in_flight_when_its_owner_is_deleted_is_deleted_with_them(container, paused) -> None:
    admin = container.admin()
    admin.create_user("tests", "dave", PASSWORD, ["basic"])
    dave_id = admin.get_user("dave").id
    outcome = race(paused, upload_as(container, "dave"), lambda: admin.delete_user("tests", "dave"))
    assert outcome["second"] is None
    with container.uow()() as uow:
        assert uow.images.ids_owned(dave_id) == []
    assert stored_originals(container) == []


def test_two_servers_starting_at_once_on_a_database_without_an_admin_both_start(container, paused) -> None:
    auth = container.auth()
    assert not auth.has_admin()
    outcome = race(
        paused,
        lambda: auth.ensure_first_admin("the-configured-admin-password"),
        lambda: auth.ensure_first_admin("the-configured-admin-password"),
    )
    assert outcome == {"first": None, "second": None}
    assert admins(container) == ["admin"]


def test_a_user_logging_out_while_being_deleted_leaves_no_logged_out_token_behind(container, paused) -> None:
    dora = container.admin().create_user("tests", "dora", PASSWORD, ["basic"])
    token, _ = container.auth().issue_token("dora", PASSWORD)
    container.auth().authenticate(token)  # remembered: the logout's own check passes from memory
    outcome = race(
        paused,
        lambda: container.admin().delete_user("tests", "dora"),
        lambda: container.auth().revoke(token),
    )
    assert outcome["first"] is None
    assert isinstance(outcome["second"], Unauthorized)  # the logout waited, then found dora gone
    with container.uow()() as uow:
        assert uow.revoked_tokens.live(dora.id, datetime.now(UTC)) == frozenset()
        assert uow.users.get_by_username("dora") is None
