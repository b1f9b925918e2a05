def test_me_after_login(user_client, user):
    response = user_client.get("/api/v1/auth/me")
    assert response.status_code == 200
    assert response.json()["email"] == user.email
