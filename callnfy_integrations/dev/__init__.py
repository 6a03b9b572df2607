"""Development tools, apart from the service: `make run` (`run`), the embedded PostgreSQL and Redis
(`embedded`), the Google and Microsoft emulators (`google_sandbox`, `microsoft_sandbox`) and the
integrations console (`console`).

Production never imports this package: `create_app` reaches into it only outside production (the
embedded servers when no URLs are set) or with DEV_CONSOLE, which production refuses
(tests/test_layering.py holds both rules)."""
