"""The checks of a stack's certificate that the dev and prod tests share: it is a server certificate
signed by the local CA (nginx/local-cert), and nginx's TLS passes sslyze's check against Mozilla's
intermediate configuration."""

import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from .stacks import REPO, Stack, clean_environment, run


def assert_server_certificate_from_the_ca(certificate: Path, ca: Path, names: list[str]) -> None:
    """What browsers and Mozilla's guidelines ask of a server's certificate, and signed by the CA."""
    run(["openssl", "verify", "-CAfile", str(ca), str(certificate)], cwd=REPO, env=clean_environment({}))

    leaf = x509.load_pem_x509_certificate(certificate.read_bytes())
    authority = x509.load_pem_x509_certificate(ca.read_bytes())
    assert leaf.issuer == authority.subject
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    alternative = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alternative.get_values_for_type(x509.DNSName) == names
    assert set(alternative.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=366), lifetime


def mozilla_intermediate_check(stack: Stack) -> str:
    """sslyze's scan of nginx on 127.0.0.1 (SNI localhost), checked against Mozilla's intermediate
    configuration, trusting the stack's CA; fails the test with sslyze's list of issues."""
    assert stack.ca_file is not None
    result = run(
        [
            sys.executable,
            "-m",
            "sslyze",
            "--mozilla_config=intermediate",
            f"--certinfo_ca_file={stack.ca_file}",
            f"localhost:{stack.https_port}{{127.0.0.1}}",
        ],
        cwd=REPO,
        env=clean_environment({}),
        check=False,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert 'Checking results against Mozilla\'s "intermediate" configuration' in output, output[-3000:]
    assert "OK - Compliant." in output, output[-3000:]
    return output
