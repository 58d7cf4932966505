"""Run by test_connect_tokens.py in separate processes: N threads call the amoCRM API for one workspace at once.

argv: a JSON object {database_url, redis_url, client_id, client_secret, workspace_id, threads}. Prints "ready",
waits for a line on stdin, then prints one JSON line {"ok": n, "errors": [...]}.
"""
import json
import sys
import threading

from config import TestingConfig
from portal import create_app
from portal.amocrm.connection import client_for
from portal.extensions import db


def main() -> None:
    spec = json.loads(sys.argv[1])
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=spec["database_url"], REDIS_URL=spec["redis_url"],
                     AMOCRM_CLIENT_ID=spec["client_id"], AMOCRM_CLIENT_SECRET=spec["client_secret"])
    results: list = []
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))  # connect before the start signal
        db.session.remove()

    def call() -> None:
        with app.app_context():
            try:
                results.append(client_for(spec["workspace_id"]).get_account()["id"])
            except Exception as exc:  # reported to the test, which fails on any
                results.append(f"{exc.__class__.__name__}: {exc}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=call) for _ in range(spec["threads"])]
    print("ready", flush=True)
    sys.stdin.readline()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"ok": sum(isinstance(r, int) for r in results),
                      "errors": [r for r in results if not isinstance(r, int)]}), flush=True)


if __name__ == "__main__":
    main()
