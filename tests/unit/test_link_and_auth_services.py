from datetime import timedelta

import pytest

from imagify.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


def test_an_enterprise_user_gets_a_link_that_resolves_until_it_expires(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann)
    link = world.link_service.create(ann, image.id, 300)
    assert link.expires_at == world.clock.now() + timedelta(seconds=300)
    assert world.link_service.resolve(link.token).id == image.id
    world.clock.advance(seconds=299)
    assert world.link_service.resolve(link.token).id == image.id
    world.clock.advance(seconds=1)
    with pytest.raises(NotFound):
        world.link_service.resolve(link.token)


def test_a_premium_user_may_not_create_links(world):
    ann = world.user("ann", "premium")
    with pytest.raises(Forbidden):
        world.link_service.create(ann, world.upload(ann).id, 300)


@pytest.mark.parametrize("seconds", [299, 30001, True, 300.5, "600", None])
def test_link_lifetimes_outside_the_policy_are_refused(world, seconds):
    ann = world.user("ann", "enterprise")
    with pytest.raises(InvalidInput, match="seconds"):
        world.link_service.create(ann, world.upload(ann).id, seconds)


def test_an_unknown_link_is_not_found(world):
    with pytest.raises(NotFound):
        world.link_service.resolve("nope")


def test_a_token_is_issued_for_the_right_password_only(world):
    world.user("ann")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    assert world.auth.authenticate(token).username == "ann"
    with pytest.raises(Unauthorized):
        world.auth.issue_token("ann", "wrong-password")
    with pytest.raises(Unauthorized):
        world.auth.issue_token("nobody", "a-long-password")


def test_a_token_stops_working_when_it_expires(world):
    world.user("ann")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    world.clock.advance(hours=2)
    with pytest.raises(Unauthorized):
        world.auth.authenticate(token)


def test_a_token_of_a_deleted_user_stops_working(world):
    world.user("ann")
    world.user("root", is_admin=True)
    token, _ = world.auth.issue_token("ann", "a-long-password")
    world.admin.delete_user("root", "ann")
    with pytest.raises(Unauthorized):
        world.auth.authenticate(token)


def test_the_first_admin_is_created_once_with_a_generated_password(world):
    password = world.auth.ensure_first_admin(None)
    assert password and len(password) >= 16
    assert world.auth.ensure_first_admin(None) is None
    token, _ = world.auth.issue_token("admin", password)
    admin = world.auth.authenticate(token)
    assert admin.is_admin and admin.tiers == ["enterprise"]


def test_the_first_admin_takes_the_configured_password(world):
    assert world.auth.ensure_first_admin("configured-password") is None
    assert world.auth.issue_token("admin", "configured-password")


def test_the_tier_list_counts_the_users_holding_each_tier(world):
    world.user("ann", "basic")
    world.user("bob", "basic", "premium")
    counts = {tier.name: holders for tier, holders in world.admin.tiers_with_holders()}
    assert counts == {"basic": 2, "enterprise": 0, "premium": 1}


def test_users_are_searched_by_any_part_of_their_name_in_any_case(world):
    for name in ("anna", "joANNe", "bob"):
        world.user(name, "basic")
    users, more = world.admin.list_users(None, 1, search="ann")
    assert [u.username for u in users] == ["anna"] and more
    users, more = world.admin.list_users("anna", 10, search="ann")
    assert [u.username for u in users] == ["joANNe"] and not more


def test_a_name_that_is_no_username_gets_the_same_401_as_an_unknown_one(world):
    world.user("ann")
    for name in ("ann ", " ann", "nobody"):
        with pytest.raises(Unauthorized, match="wrong username or password"):
            world.auth.issue_token(name, "a-long-password")


def test_the_last_admin_can_be_neither_demoted_nor_deleted(world):
    world.user("root", is_admin=True)
    with pytest.raises(Conflict, match="at least one admin must remain"):
        world.admin.update_user("cli", "root", is_admin=False)
    with pytest.raises(Conflict, match="at least one admin must remain"):
        world.admin.delete_user("cli", "root")
    world.user("second", is_admin=True)
    world.admin.update_user("cli", "root", is_admin=False)
    assert [u.username for u in world.admin.list_users()[0] if u.is_admin] == ["second"]


# Logging out: one token ends, the user's others go on.


def test_a_logged_out_token_is_refused_while_the_users_other_tokens_still_work(world):
    world.user("ann")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    other, _ = world.auth.issue_token("ann", "a-long-password")
    world.auth.revoke(token)
    with pytest.raises(Unauthorized, match="logged out; log in again"):
        world.auth.authenticate(token)
    assert world.auth.authenticate(other).username == "ann"


def test_a_token_that_no_longer_works_cannot_be_logged_out_again(world):
    world.user("ann")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    world.auth.revoke(token)
    with pytest.raises(Unauthorized, match="logged out"):
        world.auth.revoke(token)
    with pytest.raises(Unauthorized):
        world.auth.revoke("not-a-token")
    assert len(world.uow.store.revoked_tokens) == 1


def test_a_logout_forgets_the_users_revoked_tokens_that_have_expired_since(world):
    world.user("ann")
    world.user("bob")
    old, _ = world.auth.issue_token("ann", "a-long-password")
    bobs, _ = world.auth.issue_token("bob", "a-long-password")
    world.auth.revoke(old)
    world.auth.revoke(bobs)
    world.clock.advance(hours=1)  # both revoked tokens have expired
    token, _ = world.auth.issue_token("ann", "a-long-password")
    world.auth.revoke(token)
    ann_id, bob_id = (world.admin.get_user(name).id for name in ("ann", "bob"))
    # ann's expired row went with her logout; bob's waits for his next one.
    assert sorted(user for user, _ in world.uow.store.revoked_tokens) == [ann_id, bob_id]


def test_a_deleted_users_revoked_tokens_go_with_them(world):
    world.user("root", is_admin=True)
    world.user("ann")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    world.auth.revoke(token)
    world.admin.delete_user("root", "ann")
    assert world.uow.store.revoked_tokens == {}


def test_a_logout_changes_only_its_users_counter_so_no_one_elses_memory_is_dropped(world):
    ann = world.user("ann")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    before = dict(world.counters.values)
    world.auth.revoke(token)
    changed = {k for k in {*before, *world.counters.values} if before.get(k) != world.counters.values.get(k)}
    assert changed == {ann.id}


def test_two_tokens_issued_in_the_same_second_differ_and_each_has_an_id_of_its_own():
    from datetime import UTC, datetime

    from imagify.adapters.security import JwtTokenSigner

    signer = JwtTokenSigner("a-secret-of-at-least-thirty-two-characters!", timedelta(hours=1))
    now = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    first, second = (signer.issue(7, 0, now)[0] for _ in range(2))
    assert first != second
    assert signer.read(first, now).token_id != signer.read(second, now).token_id
