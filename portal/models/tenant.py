"""What makes a table tenant-owned."""
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class TenantOwned:
    """Mixin: a NOT NULL, indexed workspace_id. Lookups serving a request go through portal.tenancy."""

    @declared_attr
    def workspace_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
