"""The published HSDS-UK 3.0 schemas and OpenAPI document (Open Referral UK), read from the shared standards folder
(never copied into the project) as jsonschema validators. Not a test module.

Attribution: "Human Services Data Specification: an Open Referral resource (https://openreferral.org/)",
CC BY-SA 4.0 (the LICENSE beside the schemas).

The schemas refer to each other by their published URLs; a ``referencing`` registry answers those from the local
files, so validation needs no network. Missing schemas fail the tests under CI (they must not pass by skipping).
"""

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from asset_map.config import PROJECT_DIR

HSDS_DIR = Path(os.environ.get("ASSET_MAP_STANDARDS_DIR") or PROJECT_DIR.parent / "shared" / "data" / "standards") \
    / "hsds-uk-3.0"
PUBLISHED = "https://raw.githubusercontent.com/openreferral/uk-profile/main/schema/"


def require_hsds():
    if not (HSDS_DIR / "openapi.json").is_file():
        msg = f"HSDS-UK 3.0 schemas not found at {HSDS_DIR}"
        if os.environ.get("CI") or os.environ.get("ASSET_MAP_REQUIRE_POSTGIS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return HSDS_DIR


def _retrieve(uri):
    if not uri.startswith(PUBLISHED):
        raise LookupError(uri)
    path = HSDS_DIR / uri[len(PUBLISHED):]
    return Resource.from_contents(json.loads(path.read_text(encoding="utf-8")), default_specification=DRAFT202012)


def validator(ref):
    """A validator for a schema given by its published reference, e.g. ``compiled/service.json`` or
    ``openapi.json#/paths/~1services/get/responses/200/content/application~1json/schema``."""
    require_hsds()
    return Draft202012Validator({"$ref": PUBLISHED + ref}, registry=Registry(retrieve=_retrieve),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def response_validator(path):
    """The validator of the 200 response of ``path`` (e.g. "/services") as the ORUK OpenAPI document gives it."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return validator(f"openapi.json#/paths/{pointer}/get/responses/200/content/application~1json/schema")


def problems(validator_, doc):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator_.iter_errors(doc)]
