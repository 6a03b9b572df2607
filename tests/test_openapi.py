"""The OpenAPI document describes the envelope and the error responses; /docs serves offline."""


def test_openapi_documents_status_with_envelope_and_errors(client):
    spec = client.get("/openapi.json").json
    operation = spec["paths"]["/integrations/status"]["get"]
    assert operation["security"] == [{"bearerAuth": []}]
    ok_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    ok = spec["components"]["schemas"][ok_schema]
    assert set(ok["properties"]) == {"success", "data"}
    for status in ("401", "default"):
        response = operation["responses"][status]
        if "$ref" in response:
            response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
        error_ref = response["content"]["application/json"]["schema"]["$ref"]
        error = spec["components"]["schemas"][error_ref.split("/")[-1]]
        assert set(error["properties"]) == {"success", "error"}
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_page_and_assets_are_served_locally(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.get_data(as_text=True)
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_cors_allows_only_the_frontend_origin(client):
    allowed = client.options("/integrations/status", headers={
        "Origin": "https://app.callnfy.test", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://app.callnfy.test"
    denied = client.options("/integrations/status", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in denied.headers
