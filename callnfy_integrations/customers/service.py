"""Customers are found or created by (user, phone); the latest name and email given win."""

from __future__ import annotations

import uuid

import phonenumbers
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from .models import Customer


def normalize_phone(raw: str, region: str | None = None) -> str:
    """E.164 when the number parses as a possible number, else the input as given (trimmed)."""
    raw = raw.strip()
    try:
        number = phonenumbers.parse(raw, region or current_app.config["DEFAULT_PHONE_REGION"])
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find_or_create_customer(user_id: uuid.UUID, *, phone: str, name: str | None = None,
                            email: str | None = None, default_name: str | None = None) -> Customer:
    """The user's customer with this (normalised) phone, created or updated in the caller's transaction.

    `name` and `email` overwrite an existing customer's; `default_name` only names a new one.
    """
    statement = insert(Customer).values(user_id=user_id, phone=phone, name=name or default_name or phone,
                                        email=email)
    changes = {"name": name} if name else {}
    if email is not None:
        changes["email"] = email
    # One statement, safe when two requests meet the same new phone number at once; the no-op
    # update (phone = phone) makes RETURNING give the existing row too.
    statement = statement.on_conflict_do_update(
        index_elements=["user_id", "phone"], set_=changes or {"phone": statement.excluded.phone},
    ).returning(Customer)
    return db.session.scalars(statement, execution_options={"populate_existing": True}).one()


def customer_without_phone(user_id: uuid.UUID, *, name: str, email: str | None) -> Customer:
    """For appointments imported from Google Calendar, where no phone is known: the user's customer
    with this email (any, oldest first), else a new customer without a phone."""
    if email:
        existing = db.session.scalars(select(Customer).where(
            Customer.user_id == user_id, func.lower(Customer.email) == email.lower())
            .order_by(Customer.created_at).limit(1)).first()
        if existing is not None:
            return existing
    customer = Customer(id=uuid.uuid4(), user_id=user_id, phone=None, name=name, email=email)
    db.session.add(customer)
    db.session.flush()
    return customer


SEARCH_LIMIT = 25


def find_customers(user_id: uuid.UUID, *, phone: str | None = None, email: str | None = None) -> list[Customer]:
    """The user's customers with this phone (normalised as stored) and/or this email (any case); given
    both, a customer must match both. Most recently changed first, at most SEARCH_LIMIT."""
    conditions = [Customer.user_id == user_id]
    if phone is not None:
        conditions.append(Customer.phone == normalize_phone(phone))
    if email is not None:
        conditions.append(func.lower(Customer.email) == email.strip().lower())
    return list(db.session.scalars(select(Customer).where(*conditions)
                                   .order_by(Customer.updated_at.desc(), Customer.id).limit(SEARCH_LIMIT)))

