from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from imagify.domain.model import User
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.admin import AdminService
from imagify.domain.services.auth import AuthService
from imagify.domain.services.images import ImageService
from imagify.domain.services.links import LinkService
from tests.unit.fakes import (
    FakeBlobStorage,
    FakeChangeCounters,
    FakeClock,
    FakeHasher,
    FakeInspector,
    FakeLinkStore,
    FakeLocks,
    FakeRenderer,
    FakeSigner,
    FakeUnitOfWorkFactory,
    SequentialIds,
)


@dataclass
class World:
    uow: FakeUnitOfWorkFactory
    blobs: FakeBlobStorage
    links: FakeLinkStore
    renderer: FakeRenderer
    clock: FakeClock
    images: ImageService
    link_service: LinkService
    auth: AuthService
    admin: AdminService
    counters: FakeChangeCounters
    cache: ReadCache
    inspector: FakeInspector

    def user(self, name: str = "ann", *tiers: str, is_admin: bool = False) -> User:
        return self.admin.create_user("test", name, "a-long-password", tiers or ["basic"], is_admin)

    def upload(self, owner: User, data: bytes = b"IMG:pixels", filename: str = "cat.jpg"):
        return self.images.upload(owner, filename, io.BytesIO(data), len(data))


@pytest.fixture
def world() -> World:
    uow = FakeUnitOfWorkFactory()
    blobs = FakeBlobStorage()
    links = FakeLinkStore()
    renderer = FakeRenderer(blobs)
    clock = FakeClock()
    ids = SequentialIds()
    hasher = FakeHasher()
    counters = FakeChangeCounters()
    cache = ReadCache(counters)
    inspector = FakeInspector()
    return World(
        uow=uow,
        blobs=blobs,
        links=links,
        renderer=renderer,
        clock=clock,
        images=ImageService(uow, blobs, links, renderer, inspector, FakeLocks(), clock, ids, cache),
        link_service=LinkService(uow, links, clock, ids, cache),
        auth=AuthService(uow, hasher, FakeSigner(), clock, cache),
        admin=AdminService(uow, hasher, blobs, links, cache),
        counters=counters,
        cache=cache,
        inspector=inspector,
    )
