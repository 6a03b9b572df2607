"""The ceiling for GET /integrations/status: a bare Flask app that verifies the JWT and runs one
primary-key SELECT, served by gunicorn with the same settings. Nothing real can beat it."""

import os
import uuid

import jwt
from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

from callnfy_integrations.config import normalize_database_url

app = Flask(__name__)
engine = create_engine(normalize_database_url(os.environ["DATABASE_URL"]), pool_size=5, max_overflow=5)
SECRET = os.environ["JWT_SECRET_KEY"]
QUERY = text("SELECT id, time_zone FROM users WHERE id = :id")


@app.get("/ceiling")
def ceiling():
    header = request.headers.get("Authorization", "")
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), SECRET, algorithms=["HS256"])
        user_id = uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return jsonify({"success": False}), 401
    with engine.connect() as conn:
        row = conn.execute(QUERY, {"id": user_id}).first()
    return jsonify({"success": True, "data": {"id": str(row.id), "timeZone": row.time_zone}})


WRITE = text("INSERT INTO customers (user_id, name, phone) VALUES (:user_id, 'Bench', :phone)")


@app.post("/ceiling/write")
def ceiling_write():
    """The least an authenticated write can cost: verify the JWT, INSERT one row, COMMIT."""
    header = request.headers.get("Authorization", "")
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), SECRET, algorithms=["HS256"])
        user_id = uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return jsonify({"success": False}), 401
    with engine.begin() as conn:
        conn.execute(WRITE, {"user_id": user_id, "phone": "+1" + uuid.uuid4().hex[:12]})
    return jsonify({"success": True}), 201
