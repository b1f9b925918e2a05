"""Lists (core.pagination, core.filters): pages of ?limit= and ?offset= that refuse bad values, filter
serializers that refuse unknown parameters, a stable order, and the schema of a paginated list."""

from typing import cast

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.models import User
from accounts.tests.factories import UserFactory
from core.pagination import MAX_OFFSET, LimitOffsetPagination
from testing import assert_error

pytestmark = [pytest.mark.urls("core.tests.urls"), pytest.mark.django_db]

USERS = "/api/test/users"


@pytest.fixture
def users(staff_user: User) -> list[User]:
    return [staff_user, *(cast(User, UserFactory()) for _ in range(4))]


def test_a_page_of_the_list_with_links_to_the_next_and_previous(staff_client, users):
    emails = sorted(user.email for user in users)

    page = staff_client.get(USERS, {"limit": 2, "offset": 2}).json()

    assert page["count"] == 5
    assert [user["email"] for user in page["results"]] == emails[2:4]
    assert (
        staff_client.get(page["next"]).json()["results"] == [{"id": users[-1].pk, "email": emails[4]}]
        or [user["email"] for user in staff_client.get(page["next"]).json()["results"]] == emails[4:]
    )
    assert [user["email"] for user in staff_client.get(page["previous"]).json()["results"]] == emails[:2]


def test_without_a_limit_a_page_has_the_default_number_of_rows(staff_client, users):
    UserFactory.create_batch(LimitOffsetPagination.default_limit)

    page = staff_client.get(USERS).json()

    assert len(page["results"]) == LimitOffsetPagination.default_limit
    assert page["count"] == LimitOffsetPagination.default_limit + len(users)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"limit": "101"}, "Ensure this value is less than or equal to 100."),
        ({"limit": "ten"}, "A valid integer is required."),
        ({"limit": ""}, "A valid integer is required."),
        ({"offset": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"offset": str(MAX_OFFSET + 1)}, f"Ensure this value is less than or equal to {MAX_OFFSET}."),
        ({"offset": "1.5"}, "A valid integer is required."),
    ],
)
def test_a_bad_limit_or_offset_is_a_validation_error_not_a_silent_default(staff_client, query, message):
    details = assert_error(staff_client.get(USERS, query), 400, "VALIDATION_ERROR")["details"]

    assert details == {name: [message] for name in query}


def test_an_offset_past_the_end_is_an_empty_page(staff_client, users):
    page = staff_client.get(USERS, {"offset": MAX_OFFSET}).json()

    assert (page["count"], page["results"]) == (len(users), [])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"serach": "ada"}, "serach"),
        ({"ordering": "password"}, "ordering"),
        ({"ordering": ""}, "ordering"),
        ({"q": "a\x00b"}, "q"),
    ],
)
def test_a_filter_serializer_refuses_unknown_and_bad_parameters(staff_client, query, field):
    details = assert_error(staff_client.get(USERS, query), 400, "VALIDATION_ERROR")["details"]

    assert set(details) == {field}


def test_ordering_is_stable_for_equal_values(staff_client, users):
    """Rows equal in the ordering field come in primary-key order, so pages neither repeat nor skip."""
    User.objects.update(date_joined=users[0].date_joined)

    ids = [user["id"] for user in staff_client.get(USERS, {"ordering": "-date_joined"}).json()["results"]]

    assert ids == sorted(ids, reverse=True)


def test_an_unordered_list_is_a_programming_error(staff_client, caplog):
    assert_error(staff_client.get("/api/test/unordered"), 500, "INTERNAL_ERROR")
    assert "User rows are paginated without an order_by()" in caplog.text


def test_the_schema_describes_the_page_and_its_parameters():
    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"][USERS]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert parameters["offset"]["schema"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_OFFSET,
        "default": 0,
    }
    assert set(parameters["ordering"]["schema"]["enum"]) == {"email", "-email", "date_joined", "-date_joined"}
    assert parameters["q"]["schema"]["pattern"] == r"^[^\u0000]*$"
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["$ref"].endswith("/PaginatedUserRowList")
    assert "400" in operation["responses"]
