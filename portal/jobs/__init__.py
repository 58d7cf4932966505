"""Background jobs: plain functions that take ids, run by RQ workers inside the app context."""
