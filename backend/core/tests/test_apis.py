"""core.apis: the API docs under the API_DOCS setting, and the 404 for every unknown path under /api/."""

from html.parser import HTMLParser

import pytest

from testing import assert_error

SCHEMA = "/api/v1/schema"
DOCS = "/api/v1/docs"


class AssetLinks(HTMLParser):
    """Every URL a page makes the browser load or link: src and href attributes of any tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [(tag, value) for name, value in attrs if name in ("src", "href") and value]


def asset_urls(html: str) -> list[tuple[str, str]]:
    parser = AssetLinks()
    parser.feed(html)
    return parser.urls


# ---------------------------------------------------------------- API docs


@pytest.fixture
def docs_public(settings):
    settings.API_DOCS = "public"


@pytest.fixture
def docs_staff(settings):
    settings.API_DOCS = "staff"


@pytest.fixture
def docs_off(settings):
    settings.API_DOCS = "off"


def test_public_schema_is_openapi_3_with_the_endpoints(client, docs_public):
    response = client.get(SCHEMA)

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/auth/me", "/api/v1/auth/login", "/api/v1/health/ready"} <= set(schema["paths"])


def test_public_docs_load_nothing_from_other_sites(client, docs_public):
    response = client.get(DOCS)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    urls = asset_urls(response.content.decode())
    assert {tag for tag, _ in urls} >= {"script", "link"}
    for tag, url in urls:
        assert url.startswith("/static/"), (tag, url)
        assert "//" not in url


def test_public_docs_assets_are_served(client, docs_public):
    urls = [url for _, url in asset_urls(client.get(DOCS).content.decode())]
    assert any(url.endswith(".js") for url in urls)
    assert any(url.endswith(".css") for url in urls)

    for url in urls:
        response = client.get(url)
        # Reading it all also closes the file (the test client closes streamed responses at the end).
        content = b"".join(response.streaming_content)

        assert response.status_code == 200, url
        assert content, url


@pytest.mark.parametrize("path", [SCHEMA, DOCS])
def test_staff_docs_refuse_anonymous_with_401(client, docs_staff, path):
    assert_error(client.get(path), 401, "NOT_AUTHENTICATED")


@pytest.mark.parametrize("path", [SCHEMA, DOCS])
def test_staff_docs_refuse_other_users_with_403(user_client, docs_staff, path):
    assert_error(user_client.get(path), 403, "PERMISSION_DENIED")


def test_staff_docs_are_shown_to_staff(staff_client, docs_staff):
    schema = staff_client.get(SCHEMA)
    docs = staff_client.get(DOCS)

    assert schema.status_code == 200
    assert "/api/v1/auth/me" in schema.json()["paths"]
    assert docs.status_code == 200
    assert docs["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", [SCHEMA, DOCS])
def test_docs_off_are_not_found_for_anyone(client, staff_client, docs_off, path):
    assert_error(client.get(path), 404, "NOT_FOUND")
    assert_error(staff_client.get(path), 404, "NOT_FOUND")


# ---------------------------------------------------------------- unknown paths


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/nope"),
        ("get", "/api/v1/nope"),
        ("get", "/api/v2/x"),
        ("get", "/api/v1/auth/me/"),  # no trailing slashes in this API, and no redirect to add or remove one
        ("get", "/api/v1/health/live/"),
        ("get", "/api/"),
        ("head", "/api/v1/nope"),
        ("options", "/api/v1/nope"),
        ("post", "/api/v1/nope"),
        ("put", "/api/v1/auth/me/"),
        ("patch", "/api/v2/x"),
        ("delete", "/api/v1/nope"),
    ],
)
def test_unknown_api_paths_are_json_404_without_csrf(client, method, path):
    extra = {} if method in ("get", "head", "options") else {"csrf": False}

    response = getattr(client, method)(path, **extra)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    if method != "head":
        assert response.json() == {"message": "Not found.", "code": "NOT_FOUND", "details": {}}


def test_unknown_api_path_with_a_session_but_no_csrf_token_is_still_404(user_client):
    assert_error(user_client.post("/api/v1/nope", {"a": 1}, csrf=False), 404, "NOT_FOUND")


def test_unknown_path_outside_the_api_is_not_json(client):
    response = client.get("/nope")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b'"code"' not in response.content
