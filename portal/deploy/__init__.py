"""Deployment settings that are code: the gunicorn configuration (`gunicorn -c python:portal.deploy.gunicorn`)."""
