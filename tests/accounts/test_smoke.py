from accounts.models import Role


def test_members_list_is_scoped(api_for, users_by_role, outsider):
    response = api_for(users_by_role[Role.VIEWER]).get("/api/members/")
    assert response.status_code == 200
    usernames = {m["username"] for m in response.json()["results"]}
    assert usernames == {f"{r}-user" for r in Role.values}
    assert "outsider" not in usernames
