"""Yandex Direct: the wire client (`client`, no Flask, no database). The import, connections and settings pages
that use it are shared by every platform (`portal.adplatforms`)."""
