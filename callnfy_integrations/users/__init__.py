"""Callnfy users as this service knows them: an id from the auth service and account preferences."""
