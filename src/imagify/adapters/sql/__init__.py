"""SQL adapters on SQLAlchemy: the repositories, the unit of work, links and migrations."""

from imagify.adapters.sql.links import SqlLinkStore
from imagify.adapters.sql.migrate import alembic_config, current_revision, downgrade, upgrade
from imagify.adapters.sql.image_repositories import SqlAlchemyImageRepository, SqlAlchemyRenditionRepository
from imagify.adapters.sql.repositories import (
    SqlAlchemyRevokedTokenRepository,
    SqlAlchemyTierRepository,
    SqlAlchemyUserRepository,
)
from imagify.adapters.sql.unit_of_work import (
    SqlAlchemyUnitOfWork,
    SqlAlchemyUnitOfWorkFactory,
    check_database,
    make_engine,
    sqlite_file,
)

__all__ = [
    "SqlAlchemyImageRepository",
    "SqlAlchemyRenditionRepository",
    "SqlAlchemyRevokedTokenRepository",
    "SqlAlchemyTierRepository",
    "SqlAlchemyUnitOfWork",
    "SqlAlchemyUnitOfWorkFactory",
    "SqlAlchemyUserRepository",
    "SqlLinkStore",
    "alembic_config",
    "check_database",
    "current_revision",
    "downgrade",
    "make_engine",
    "sqlite_file",
    "upgrade",
]
