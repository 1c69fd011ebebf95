"""The format policy: codenames, the original's default, Accept buckets, negotiation."""

from __future__ import annotations

import pytest

from imagify.domain.errors import Forbidden, InvalidInput
from imagify.domain.formats import accept_bucket, default_format, negotiate
from imagify.domain.permissions import BUILT_IN_TIERS, Permissions, parse_codename


def test_format_codenames_parse_and_others_are_refused():
    assert parse_codename("format:webp") == "format:webp"
    assert Permissions.parse(["format:avif", "format:webp", "thumbnail:200"]).formats == ["avif", "webp"]
    for bad in ("format:gif", "format:", "format:WEBP", "format:jpeg"):
        with pytest.raises(InvalidInput):
            parse_codename(bad)


def test_built_in_tiers_grant_webp_to_premium_and_both_to_enterprise():
    tiers = {t.name: t.permissions.formats for t in BUILT_IN_TIERS}
    assert tiers == {"basic": [], "premium": ["webp"], "enterprise": ["avif", "webp"]}


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("image/jpeg", "jpeg"), ("image/png", "png"), ("image/webp", "webp"),
     ("image/gif", "png"), ("image/heic", "jpeg"), ("image/avif", "jpeg")],
)
def test_without_negotiation_a_thumbnail_keeps_the_originals_format_or_becomes_jpeg(content_type, expected):
    assert default_format(content_type) == expected


@pytest.mark.parametrize(
    ("accept", "bucket"),
    [
        (None, ()),
        ("", ()),
        ("*/*", ()),
        ("image/*,*/*;q=0.8", ()),
        ("image/avif,image/webp,image/apng,*/*;q=0.8", ("avif", "webp")),
        ("image/webp,*/*", ("webp",)),
        ("IMAGE/WEBP ; Q=0.5, image/avif;q=0.4", ("webp", "avif")),
        ("image/avif;q=0, image/webp", ("webp",)),
        ("image/avif;q=nonsense", ()),
        ("text/webp, webp", ()),
    ],
)
def test_accept_collapses_to_a_few_buckets(accept, bucket):
    assert accept_bucket(accept) == bucket


def test_negotiation_picks_the_best_admitted_format_the_tiers_grant():
    chrome = "image/avif,image/webp,*/*"
    assert negotiate("image/jpeg", ["avif", "webp"], chrome, None) == "avif"
    assert negotiate("image/jpeg", ["webp"], chrome, None) == "webp"
    assert negotiate("image/png", [], chrome, None) == "png"
    assert negotiate("image/png", ["avif"], "image/webp", None) == "png"


def test_an_explicit_format_overrides_accept_but_needs_its_grant():
    assert negotiate("image/jpeg", [], "image/avif", "png") == "png"
    assert negotiate("image/png", [], None, "JPG") == "jpeg"
    assert negotiate("image/jpeg", ["webp"], None, "webp") == "webp"
    with pytest.raises(Forbidden):
        negotiate("image/jpeg", ["webp"], None, "avif")
    with pytest.raises(InvalidInput):
        negotiate("image/jpeg", ["webp"], None, "gif")
