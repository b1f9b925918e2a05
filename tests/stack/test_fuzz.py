"""The production stack's API fuzzed from its own OpenAPI schema with schemathesis's `st run`, through
nginx, logged in, with the CSRF cookie and header and the Origin on every request (fuzz_hooks.py), as the
single-page app sends them.

Every operation gets the schema's examples, edge cases of each field (the coverage phase) and generated
requests, deterministically, so each run sends the same ones. schemathesis's checks fail the run on any
5xx and on any answer the schema does not describe (status, body, content type, headers), on malformed
input the API accepts, on well-formed input refused for a reason other than those schemathesis.toml
names, and on unsupported methods not answered 405 with Allow. The number of requests is printed with
the stack test's figures.
"""

import re

import pytest

from .stacks import FIGURES, REPO, Stack, clean_environment, run

pytestmark = pytest.mark.usefixtures("prod_stack")

# Generated requests per operation in the fuzzing phase; with the coverage phase's edge cases, about 800
# requests in all, in a minute and a half.
MAX_EXAMPLES = 60


def test_the_api_keeps_to_its_schema(prod_stack: Stack):
    result = run(
        [
            str(REPO / "backend" / ".venv" / "bin" / "st"),
            "--config-file",
            str(REPO / "tests" / "stack" / "schemathesis.toml"),
            "run",
            f"{prod_stack.origin}/api/v1/schema",
            "--url",
            prod_stack.origin,
            "--tls-verify",
            str(prod_stack.ca_file),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-deterministic",
            "--continue-on-failure",
            "--no-color",
        ],
        cwd=REPO / "tests",
        env=clean_environment(
            {
                "SCHEMATHESIS_HOOKS": "stack.fuzz_hooks",
                "PYTHONPATH": str(REPO / "tests"),
                "FUZZ_ORIGIN": prod_stack.origin,
                "FUZZ_CA_FILE": str(prod_stack.ca_file),
            }
        ),
        check=False,
        timeout=600,
    )
    output = result.stdout + result.stderr
    cases = re.search(r"Test cases:\s*\n\s*(\d+) generated, (.*)", output)
    FIGURES.append(
        f"fuzzing: {cases.group(1)} requests from the schema, {cases.group(2)}" if cases else output[-2000:]
    )
    assert result.returncode == 0, output[-20000:]
    assert cases
    assert int(cases.group(1)) >= 600
