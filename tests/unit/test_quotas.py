"""Limits and usage: parsed in one place, the most generous of a user's tiers, checked at upload."""

from __future__ import annotations

import pytest

from imagify.domain.errors import InvalidInput, QuotaExceeded, TooLarge
from imagify.domain.quotas import Limits, Usage


def test_limits_parse_known_names_and_refuse_anything_else():
    assert Limits.parse({"max_images": 3, "max_link_seconds": None}) == Limits(max_images=3)
    assert Limits.parse(None).unlimited
    for bad in ({"max_images": -1}, {"max_images": 1.5}, {"max_images": True}, {"max_link_seconds": 299},
                {"max_link_seconds": 30001}, {"max_pixels": 1}, [1]):  # fmt: skip
        with pytest.raises(InvalidInput):
            Limits.parse(bad)  # type: ignore[arg-type]


def test_a_user_gets_per_limit_the_most_generous_of_their_tiers_and_unlimited_wins():
    few = Limits(max_images=1, max_storage_bytes=1000, max_link_seconds=600)
    many = Limits(max_images=5, max_storage_bytes=10, max_link_seconds=None)
    assert Limits.most_generous([few, many]) == Limits(
        max_images=5, max_storage_bytes=1000, max_link_seconds=None
    )
    assert Limits.most_generous([few, Limits()]).unlimited
    assert Limits.most_generous([]).unlimited  # no tiers: as before limits existed


def test_an_upload_is_checked_exactly_at_the_boundary():
    limits = Limits(max_images=2, max_storage_bytes=100, max_upload_bytes=60)
    limits.check_upload(Usage(1, 40), 60)  # ends exactly at both limits
    with pytest.raises(QuotaExceeded, match="2 of 2 images"):
        limits.check_upload(Usage(2, 0), 1)
    with pytest.raises(QuotaExceeded, match="41 of 100 bytes"):
        limits.check_upload(Usage(0, 41), 60)
    with pytest.raises(TooLarge, match="max_upload_bytes"):
        limits.check_upload(Usage(), 61)


def test_a_refused_upload_stores_nothing_and_a_delete_releases_its_usage(world):
    from dataclasses import replace

    from imagify.domain.permissions import Permissions, Tier

    world.admin.create_tier("test", "one", ["thumbnail:200"], {"max_images": 1})
    ann = world.user("ann", "one")
    image = world.upload(ann)
    ann = world.admin.get_user("ann")
    assert ann.usage == Usage(1, len(b"IMG:pixels"))
    stored = sorted(world.blobs.blobs)
    decoded = world.inspector.inspected
    with pytest.raises(QuotaExceeded):
        world.upload(ann)
    assert world.inspector.inspected == decoded  # refused before its check decodes anything
    # Even with a stale view of the usage, the check in the transaction refuses.
    with pytest.raises(QuotaExceeded):
        world.upload(replace(ann, usage=Usage()))
    assert sorted(world.blobs.blobs) == stored
    world.images.delete(ann, image.id)
    assert world.admin.get_user("ann").usage == Usage()
    assert Tier("x", Permissions()).limits.unlimited


def test_a_link_longer_than_the_tiers_cap_is_refused_naming_it(world):
    world.admin.create_tier(
        "test", "short", ["can_generate_expiring_link"], {"max_link_seconds": 600}
    )
    ann = world.user("ann", "short")
    image = world.upload(ann)
    assert world.link_service.create(ann, image.id, 600)
    with pytest.raises(InvalidInput, match="at most 600"):
        world.link_service.create(ann, image.id, 601)
