"""Property-based fuzzing of POST /api/leads: whatever arrives, the answer is never a 5xx."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.intake.submission import ATTRIBUTION_KEYS, FIRST_TOUCH_FIELD, HONEYPOT_FIELD

FIELD_NAMES = ["name", "phone", "email", "message", "idempotency_key", HONEYPOT_FIELD, *ATTRIBUTION_KEYS]
# Modest example counts: the three properties run in seconds; CI runs them on every push.
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=300),
                    st.sampled_from(["+79991234567", "8 999 123-45-67", "ivan@example.com", "\x00", "\ud800",
                                     "2024-01-01T00:00:00Z", "1700000000000", "9" * 5000, "x" * 2500]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12),
                                                                                         inner, max_size=4),
                      max_leaves=12)
first_touch = st.one_of(values, st.dictionaries(st.sampled_from(["utm_source", "referrer", "landing_page",
                                                                 "timestamp", "other"]), values, max_size=5))
documents = st.fixed_dictionaries({}, optional={
    **{name: values for name in FIELD_NAMES}, FIRST_TOUCH_FIELD: first_touch}).flatmap(
    lambda known: st.dictionaries(st.text(max_size=20), values, max_size=3).map(lambda extra: {**extra, **known}))


@pytest.fixture
def fuzz_client(database_schema):
    from fixtures.support import empty_tables, make_app

    from portal.extensions import db
    from portal.models import Workspace

    app = make_app(LEAD_RATE_LIMIT_IP="1000000 per minute", LEAD_RATE_LIMIT_WORKSPACE="1000000 per minute")
    with app.app_context():
        workspace = Workspace(name="Fuzzed")
        db.session.add(workspace)
        db.session.commit()
        public_id = workspace.public_id
    yield app.test_client(), public_id
    app.extensions["leadpath_redis"].flushdb()
    empty_tables(app)


VALID = object()


@FUZZ
@given(document=documents, workspace=st.one_of(st.just(VALID), st.none(), values),
       key=st.one_of(st.none(), st.text(max_size=200)), header_workspace=st.one_of(st.none(), st.text(max_size=80)))
def test_json_documents_never_5xx(fuzz_client, document, workspace, key, header_workspace):
    client, public_id = fuzz_client
    if workspace is not None:
        document = {**document, "userAccountId": public_id if workspace is VALID else workspace}
    headers = {"Idempotency-Key": key} if key and key.isprintable() and key.isascii() else {}
    if header_workspace and header_workspace.isprintable() and header_workspace.isascii():
        headers["X-Workspace"] = header_workspace
    response = client.post("/api/leads", data=json.dumps(document), content_type="application/json",
                           headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json
    if response.status_code in (200, 201):
        assert isinstance(response.get_json()["leadId"], int)


@FUZZ
@given(body=st.binary(max_size=2000), content_type=st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "multipart/form-data", "text/plain", "", "application/json; charset=latin-1",
     "application/x-www-form-urlencoded; charset=utf-16"]))
def test_raw_bodies_never_5xx(fuzz_client, body, content_type):
    client, _ = fuzz_client
    response = client.post("/api/leads", data=body, content_type=content_type)
    assert response.status_code < 500, response.get_data(as_text=True)


@FUZZ
@given(form=st.dictionaries(st.sampled_from(FIELD_NAMES + ["first_touch", "first_touch[timestamp]",
                                                           "first_touch.utm_source", "userAccountId"]),
                            st.text(max_size=300), max_size=8))
def test_form_bodies_never_5xx(fuzz_client, form):
    client, public_id = fuzz_client
    form.setdefault("userAccountId", public_id)
    response = client.post("/api/leads", data=form)
    assert response.status_code < 500, response.get_data(as_text=True)
