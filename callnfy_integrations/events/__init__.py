"""Domain events and their transactional outbox: recorded with the change, dispatched after commit."""
