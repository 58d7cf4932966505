"""The VK Ads and Google Ads wire clients are plain libraries: they import without Flask, SQLAlchemy or Redis."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wire_clients_import_without_flask_sqlalchemy_or_redis():
    script = ("import sys; import portal.adplatforms.vk_ads.client, portal.adplatforms.google_ads.client; "
              "loaded = sorted(name for name in ('flask', 'sqlalchemy', 'redis', 'flask_sqlalchemy') "
              "if name in sys.modules); print(','.join(loaded))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
