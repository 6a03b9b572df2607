"""Flask extensions, created unbound here and bound to an app in `create_app`.

The flask-smorest `Api` is the exception: it owns one OpenAPI spec, so each app builds its own.
"""

from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

# Deterministic constraint names keep Alembic migrations reviewable and reversible.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Bind key of the autocommit engine (`db.engines[AUTOCOMMIT_BIND]`): single-statement reads only.
AUTOCOMMIT_BIND = "autocommit"

# expire_on_commit=False: a response serialised after commit must not re-read every row it just wrote.
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION),
                session_options={"expire_on_commit": False})
migrate = Migrate()
jwt = JWTManager()
cors = CORS()
