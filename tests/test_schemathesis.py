"""Property-based run of the app's own OpenAPI schema (schemathesis): no 5xx for any input, every
response matches the schema, and every error is `{"error": {"code", "message"}}`.

Runs against its own small index (writes included), with a bounded, derandomised number of examples
per operation so it fits CI.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.app import create_app
from rag.archive import Archive
from rag.articles import make_article

from synthetic import articles

EXAMPLES = 30


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    Archive.open("default", folder, create=True).ingest([make_article(r, r["id"]) for r in articles(12, seed=5)])
    return schemathesis.openapi.from_asgi("/openapi.json", create_app("default", str(folder)))


def error_shape(ctx, response, case) -> None:
    """Every 4xx is the one error document, as JSON."""
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, error_shape]


def test_no_input_gets_a_5xx_or_breaks_the_schema(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                case.call_and_validate(checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                continue  # no parameters or body: nothing can be made invalid
            except (Exception, BaseExceptionGroup) as exc:  # gather every operation's failures, then report all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
