"""`GET /v1/models` (server/routes/models.py): the upstream's list, filtered by the key."""

from __future__ import annotations

from tests.server.helpers import AUTH, MODEL, db_key


async def test_model_list_is_filtered_to_what_the_key_may_use(make_gateway, tmp_path):
    key = db_key(tmp_path, name="narrow", allowed_models=["other-model"])
    gw = make_gateway()
    full = (await gw.get("/v1/models", headers=AUTH)).json()
    assert {m["id"] for m in full["data"]} == {MODEL, "other-model"}
    narrow = (await gw.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).json()
    assert [m["id"] for m in narrow["data"]] == ["other-model"]
