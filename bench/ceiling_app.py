"""The ceilings for the service's benches: bare Flask endpoints served by gunicorn with the same
settings. `GET /ceiling` verifies the JWT and runs one primary-key SELECT (the ceiling of
`GET /integrations/status`); `POST /ceiling/write` verifies the JWT and INSERTs one row."""

import os
import uuid

import jwt
from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

from callnfy_integrations.config import normalize_database_url

app = Flask(__name__)
engine = create_engine(normalize_database_url(os.environ["DATABASE_URL"]), pool_size=5, max_overflow=5)
SECRET = os.environ["JWT_SECRET_KEY"]
READ = text("SELECT id, time_zone FROM users WHERE id = :id")
WRITE = text("INSERT INTO customers (user_id, name, phone) VALUES (:user_id, 'Bench', :phone)")


def _user_id() -> uuid.UUID | None:
    try:
        claims = jwt.decode(request.headers.get("Authorization", "").removeprefix("Bearer "), SECRET,
                            algorithms=["HS256"])
        return uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


@app.get("/ceiling")
def ceiling():
    user_id = _user_id()
    if user_id is None:
        return jsonify({"success": False}), 401
    with engine.connect() as conn:
        row = conn.execute(READ, {"id": user_id}).first()
    return jsonify({"success": True, "data": {"id": str(row.id), "timeZone": row.time_zone}})


@app.post("/ceiling/write")
def ceiling_write():
    user_id = _user_id()
    if user_id is None:
        return jsonify({"success": False}), 401
    with engine.begin() as conn:
        conn.execute(WRITE, {"user_id": user_id, "phone": "+1" + uuid.uuid4().hex[:12]})
    return jsonify({"success": True}), 201
