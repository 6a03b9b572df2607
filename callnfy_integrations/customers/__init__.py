"""A user's customers: the people who call and book, found or created by phone number."""
