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
