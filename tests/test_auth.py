"""JWT authentication: minimal Callnfy tokens in, every failure a 401 envelope."""

import base64
import json
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from callnfy_integrations import create_app
from tests.factories import token
from tests.support import make_config

URL = "/integrations/status"


def assert_unauthorized(response):
    assert response.status_code == 401
    assert response.json == {"success": False, "error": {"code": "UNAUTHORIZED", "message": "Unauthorized"}}


def test_minimal_token_with_only_sub_and_exp_is_accepted(client, user_id):
    response = client.get(URL, headers={"Authorization": f"Bearer {token(user_id)}"})
    assert response.status_code == 200
    claims = json.loads(base64.urlsafe_b64decode(token(user_id).split(".")[1] + "=="))
    assert set(claims) == {"sub", "exp"}


def test_missing_header_is_401(client):
    assert_unauthorized(client.get(URL))


def test_garbage_token_is_401(client):
    assert_unauthorized(client.get(URL, headers={"Authorization": "Bearer not.a.jwt"}))


def test_non_bearer_scheme_is_401(client, user_id):
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Basic {token(user_id)}"}))


def test_wrong_signature_is_401(client, user_id):
    forged = token(user_id, key="another-secret-of-thirty-two-bytes!!")
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Bearer {forged}"}))


def test_expired_token_is_401(client, user_id):
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Bearer {token(user_id, expires_in=-120)}"}))


def test_non_uuid_sub_is_401(client):
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Bearer {token('user-42')}"}))


def test_token_without_expiry_is_401(client, user_id):
    import jwt

    from callnfy_integrations.config import DEV_JWT_SECRET_KEY

    forever = jwt.encode({"sub": str(user_id)}, DEV_JWT_SECRET_KEY, algorithm="HS256")
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Bearer {forever}"}))


def test_unsigned_token_is_401(client, user_id):
    import jwt

    unsigned = jwt.encode({"sub": str(user_id), "exp": 4102444800}, None, algorithm="none")
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Bearer {unsigned}"}))


@pytest.fixture(scope="module")
def rsa_keys():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def rs256_client(app, database_url, servers, rsa_keys):
    config = make_config(database_url, servers["redis"], JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=rsa_keys[1])
    return create_app(config).test_client()


def test_rs256_token_accepted_when_configured(rs256_client, rsa_keys):
    user_id = uuid.uuid4()
    good = token(user_id, key=rsa_keys[0], algorithm="RS256")
    assert rs256_client.get(URL, headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_rs256_app_refuses_hs256_tokens(rs256_client, rsa_keys):
    # Algorithm confusion: an HS256 token keyed with the (public) RSA key must not pass.
    import hashlib
    import hmac
    import time

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": str(uuid.uuid4()), "exp": int(time.time()) + 600}).encode())
    signature = b64(hmac.new(rsa_keys[1].encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
    forged = f"{header}.{payload}.{signature}"
    assert_unauthorized(rs256_client.get(URL, headers={"Authorization": f"Bearer {forged}"}))
    assert_unauthorized(rs256_client.get(URL, headers={"Authorization": f"Bearer {token(uuid.uuid4())}"}))


def test_a_refresh_token_is_refused_and_an_access_token_accepted(client, user_id):
    refresh = token(user_id, type="refresh", jti="r1")  # flask-jwt-extended's refresh-token shape
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Bearer {refresh}"}))
    access = token(user_id, type="access")
    assert client.get(URL, headers={"Authorization": f"Bearer {access}"}).status_code == 200


def test_a_token_naming_an_audience_is_refused_when_none_is_configured(client, user_id):
    """Issued for some other service: without JWT_AUDIENCE this service cannot call it its own."""
    elsewhere = token(user_id, aud="billing-service")
    assert_unauthorized(client.get(URL, headers={"Authorization": f"Bearer {elsewhere}"}))


AUDIENCE, ISSUER = "callnfy-integrations", "https://auth.callnfy.test"


@pytest.fixture(scope="module")
def scoped_app(app, database_url, servers):
    return create_app(make_config(database_url, servers["redis"], JWT_AUDIENCE=AUDIENCE, JWT_ISSUER=ISSUER))


@pytest.mark.parametrize("claims", [
    {"aud": AUDIENCE, "iss": ISSUER},
    {"aud": ["callnfy-web", AUDIENCE], "iss": ISSUER},  # one of several audiences
])
def test_audience_and_issuer_when_configured_are_accepted(scoped_app, claims):
    response = scoped_app.test_client().get(URL, headers={"Authorization": f"Bearer {token(uuid.uuid4(), **claims)}"})
    assert response.status_code == 200


@pytest.mark.parametrize("claims", [
    {"iss": ISSUER},  # no audience
    {"aud": "billing-service", "iss": ISSUER},
    {"aud": AUDIENCE},  # no issuer
    {"aud": AUDIENCE, "iss": "https://evil.example"},
    {"aud": AUDIENCE, "iss": ISSUER, "type": "refresh"},
])
def test_audience_and_issuer_when_configured_are_required(scoped_app, claims):
    response = scoped_app.test_client().get(URL, headers={"Authorization": f"Bearer {token(uuid.uuid4(), **claims)}"})
    assert_unauthorized(response)


def test_development_tokens_carry_the_configured_audience_and_issuer(scoped_app):
    from callnfy_integrations.auth import create_dev_token

    with scoped_app.app_context():
        dev = create_dev_token(uuid.uuid4())
    assert scoped_app.test_client().get(URL, headers={"Authorization": f"Bearer {dev}"}).status_code == 200
