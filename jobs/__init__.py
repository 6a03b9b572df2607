"""Background jobs: module-level functions taking ids, run by `flask worker` inside the app context."""
