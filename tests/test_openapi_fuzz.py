"""The published OpenAPI documents are exact: schemathesis (property-based) generates requests from them against
the app and fails on any server error, undocumented status code or content type, or a body that breaks the
documented schema. Bounded (a few examples per operation) so the suite stays fast."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)

from tests.conftest import make_app
from tests.export_data import export_db, export_engine  # noqa: F401

EXAMPLES = 6
# One collection of each kind (the per-district asset collections share one code path).
OGC_SAMPLE = ("/api", "/conformance", "/collections/assets/", "/collections/associations/",
              "/collections/individuals/", "/collections/districts/", "/collections/need-imd-2025/",
              "/collections/assets-E07000197/")
# What the document promises: no server error, and every status code, content type, header and body as documented.
# ("Schema-valid request accepted" is not among them: a CQL2 filter or a bounding box whose minimum exceeds its
# maximum is valid as a string or four numbers, and the documented answer to a wrong one is a 400.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(export_db, tmp_path_factory):
    return make_app(export_db, tmp_path_factory.mktemp("fuzz"))


def fuzz(schema, examples=EXAMPLES, only=None):
    """Every operation of ``schema`` (whose path contains one of ``only``), ``examples`` generated requests each;
    the failures as text."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if only and not any(part in operation.path for part in only):
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            # Identity: the WSGI transport does not decompress what Flask-Compress would send.
            case.call_and_validate(headers={"Accept-Encoding": "identity"}, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - every failure is reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(err)[:1500]}")
    return failures


@pytest.mark.slow
def test_ogc_api_keeps_its_document(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/ogc/api", fuzz_app)
    failures = fuzz(schema, only=OGC_SAMPLE)
    assert not failures, "\n\n".join(failures)


def test_the_fuzzer_finds_a_broken_promise(fuzz_app, monkeypatch):
    """It can fail: with feature properties no longer nullable, the nulls the server sends break the document."""
    from asset_map.api import openapi

    monkeypatch.setattr(openapi, "_nullable", lambda schema: schema)
    schema = schemathesis.openapi.from_wsgi("/ogc/api", fuzz_app)
    failures = fuzz(schema, examples=3, only=("/collections/associations/items",))
    assert failures and "null" in failures[0]


@pytest.mark.slow
def test_oruk_api_keeps_its_document(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/oruk/openapi.json", fuzz_app)
    failures = fuzz(schema)
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_map_api_keeps_its_document(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    failures = fuzz(schema)
    assert not failures, "\n\n".join(failures)
