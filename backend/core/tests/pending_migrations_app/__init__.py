"""An app without models, installed only by test_check_pending_migrations.py, whose migrations each test
writes into a temporary package."""
