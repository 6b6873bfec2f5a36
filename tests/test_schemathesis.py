"""Property-based API testing of the mock SRMS from its own OpenAPI document: no 5xx, no response
that breaks the schema."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")


def test_openapi_conformance(srms) -> None:  # type: ignore[no-untyped-def]
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(srms.url + "/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            auth = {"Authorization": f"Bearer {srms.token}"}
            response = case.call(base_url=srms.url, headers=auth)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
            case.validate_response(response, headers=auth)

        try:
            check()
        except Exception as exc:  # collect all operations' failures
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:800]}")
    assert not failures, "\n".join(failures)
