"""The service against its own OpenAPI schema (issue 27, finding 12): schemathesis
generates requests for every operation, the ML-backend routes included, from a fixed
seed, at least 50 examples each, and runs every one of its checks on every response.
Any 5xx or spec violation fails the test.

Exceptions, each with its reason (nothing else is left out):
- `positive_data_acceptance` (a request valid by the schema must not get a 4xx other
  than 401/403/404/409) is not run on five operations whose valid requests depend on
  data or on another parameter, which OpenAPI cannot state:
  POST /admin/import (the body is a file, `format: binary`: any bytes are valid by the
  schema, most of them no label file), POST /webhooks/labels (sample ids are the
  project's data: an unknown id is refused with 422 naming it), GET /admin/export/labels
  (`round` goes with `format=label-studio` only); POST /admin/search (exactly one of
  ids, text or vector, the ids known samples, the vector of the project's width) and POST
  /admin/slices/enqueue (the cluster or metadata value must exist in the project).
- `negative_data_rejection` also accepts 413: a body over the server's byte limit is
  refused before it is parsed (a list longer than `maxItems` usually is).
The failed sign-in limit is lifted here (the checks send wrong tokens on purpose; a 429
would then answer the rest); tests/server/test_safety.py tests it. The project's label
set is open here, so that any label the schema allows is accepted
(a closed set refuses labels outside it with 422, tested in test_api_tasks).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")

import httpx  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import seed as fixed_seed  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from longtail.engine import users  # noqa: E402
from longtail.server.app import create_app  # noqa: E402
from longtail.server.settings import ServerSettings  # noqa: E402

from .conftest import make_store  # noqa: E402

EXAMPLES = 50
NOT_DESCRIBABLE = {"POST /admin/import", "POST /webhooks/labels", "GET /admin/export/labels",
                   "POST /admin/search", "POST /admin/slices/enqueue"}

_root = Path(tempfile.mkdtemp(prefix="longtail-fuzz-"))
_store = make_store(_root / "p", n=40, round_sizes=(10, 10), label_set=None)
TOKEN = users.add_user(_store, "root", "admin")[1]
users.add_user(_store, "ann", "annotator")
_store.close()


def _label_studio(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"detail": "not found"})


APP = create_app(_root / "p", ServerSettings(
    lease_ttl=60, overlap=2, max_page=200, label_studio=True, auth_fail_limit=10**6,
    label_studio_url="http://ls.invalid", label_studio_token="t"),
    ls_transport=httpx.MockTransport(_label_studio))
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413", "415",
                          "422", "428", "429", "5xx"]}}})
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())
POSITIVE = next(c for c in ALL_CHECKS if c.__name__ == "positive_data_acceptance")


@schema.parametrize()
@fixed_seed(27)
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_holds_to_the_schema(case):
    label = f"{case.method.upper()} {case.path}"
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=ALL_CHECKS,
                           excluded_checks=[POSITIVE] if label in NOT_DESCRIBABLE else [])
