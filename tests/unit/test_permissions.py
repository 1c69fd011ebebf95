import pytest

from imagify.domain.errors import InvalidInput
from imagify.domain.model import link_lifetime
from imagify.domain.permissions import BUILT_IN_TIERS, Permissions, ThumbnailHeight, Tier, parse_codename


@pytest.mark.parametrize("codename", ["thumbnail:1", "thumbnail:4096", "can_access_original_image",
                                      "can_generate_expiring_link"])
def test_valid_codenames_parse_to_themselves(codename):
    assert parse_codename(codename) == codename


def test_leading_zeros_in_a_thumbnail_height_are_normalised():
    assert parse_codename("thumbnail:0200") == "thumbnail:200"


@pytest.mark.parametrize("codename", ["thumbnail:0", "thumbnail:4097", "thumbnail:-5", "thumbnail:",
                                      "thumbnail:2x", "thumbnail", "can_fly", "", " thumbnail:200",
                                      "THUMBNAIL:200"])
def test_anything_else_is_an_error_naming_the_bad_value(codename):
    with pytest.raises(InvalidInput) as caught:
        parse_codename(codename)
    assert repr(codename) in caught.value.detail


@pytest.mark.parametrize("height", [0, 4097, -1, True, 2.5])
def test_a_thumbnail_height_outside_1_to_4096_refuses_to_exist(height):
    with pytest.raises(InvalidInput):
        ThumbnailHeight(height)


def test_built_in_tiers_grant_what_the_design_says():
    tiers = {t.name: t.permissions for t in BUILT_IN_TIERS}
    assert tiers["basic"].thumbnail_heights == [200]
    assert tiers["premium"].thumbnail_heights == [200, 400]
    assert not tiers["premium"].original_access and not tiers["premium"].expiring_links
    assert tiers["enterprise"].thumbnail_heights == [200, 400]
    assert tiers["enterprise"].original_access and tiers["enterprise"].expiring_links


def test_a_user_holds_the_union_of_their_tiers_permissions():
    a = Permissions.parse(["thumbnail:100", "can_access_original_image"])
    b = Permissions.parse(["thumbnail:600", "thumbnail:100"])
    both = a.union(b)
    assert both.thumbnail_heights == [100, 600]
    assert both.original_access and not both.expiring_links
    assert both.sorted() == ["thumbnail:100", "thumbnail:600", "can_access_original_image"]


def test_thumbnail_heights_sort_numerically_not_as_text():
    assert Permissions.parse(["thumbnail:1000", "thumbnail:90"]).thumbnail_heights == [90, 1000]


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "slash/name", "ünï"])
def test_a_tier_name_must_be_letters_digits_dash_or_underscore(name):
    with pytest.raises(InvalidInput):
        Tier(name, Permissions())


@pytest.mark.parametrize("seconds", [300, 301, 29999, 30000])
def test_link_lifetimes_from_300_to_30000_seconds_are_accepted(seconds):
    assert link_lifetime(seconds).total_seconds() == seconds


@pytest.mark.parametrize("seconds", [299, 30001, 0, -300, True, False, 300.0, "300", None])
def test_other_link_lifetimes_are_refused(seconds):
    with pytest.raises(InvalidInput):
        link_lifetime(seconds)
