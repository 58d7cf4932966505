"""While PostgreSQL is down (or restarting) the portal answers 503 with Retry-After — JSON on the API, a page of its
own elsewhere — never a 500: the snippet and API clients retry on 5xx and deliver the lead once it is back."""
import socket

import pytest
from fixtures.support import make_app


@pytest.fixture
def app_without_database():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return make_app(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone", REDIS_URL=None,
                    SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": {"connect_timeout": 2}})


def test_the_lead_api_answers_503_json_with_retry_after(app_without_database):
    response = app_without_database.test_client().post("/api/leads", json={
        "userAccountId": "ws_0123456789abcdef", "name": "Olga", "phone": "+79161234567"})
    assert response.status_code == 503
    assert response.headers.get("Retry-After")  # ours, or the rate limiter's window when it adds its headers
    assert response.json["error"] == "service_unavailable"
    assert "try again" in response.json["message"]


def test_a_page_answers_a_503_page_not_a_500(app_without_database):
    client = app_without_database.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"  # a logged-in visitor: loading the user needs the database
        session["_fresh"] = True
    response = client.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    page = response.get_data(as_text=True)
    assert "Temporarily unavailable" in page and "Something went wrong" not in page
